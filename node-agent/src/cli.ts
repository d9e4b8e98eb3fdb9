#!/usr/bin/env node
import { runInfoCommand } from './commands/info.ts'
import { runJoinCommand } from './commands/join.ts'

const USAGE = `usage: barnraise-agent <command> [options]

commands:
  info [--json]                                  print the hardware this agent sees
  join --coordinator MULTIADDR --token TOKEN     enroll this machine and stay connected
       [--data-dir DIR] [--name NAME] [--heartbeat-interval SECONDS] [--no-train]
  help                                           this text
`

type Command = (argv: string[]) => Promise<number>

const commands: Record<string, Command> = {
  info: runInfoCommand,
  join: runJoinCommand
}

async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(USAGE)
    return name === undefined ? 2 : 0
  }
  const command = commands[name]
  if (command === undefined) {
    process.stderr.write(`barnraise-agent: unknown command "${name}"\n${USAGE}`)
    return 2
  }
  return await command(rest)
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`barnraise-agent: ${(err as Error).message}\n`)
  process.exitCode = 1
})

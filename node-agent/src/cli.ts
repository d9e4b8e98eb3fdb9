#!/usr/bin/env node
import { existsSync } from 'node:fs'
import { isParseArgsError, toPlainText } from '@barnraise/protocol'
import { runInfoCommand } from './commands/info.ts'
import { runJoinCommand } from './commands/join.ts'
import { runSelftestCommand } from './commands/selftest.ts'
import { runTrainCommand } from './commands/train.ts'
import { runShardCommand } from './commands/shard.ts'
import { EXECUTOR_USAGE } from './executors/executor-flags.ts'

const USAGE = `usage: barnraise-agent <command> [options]

commands:
  info [--json] [--no-measure] [--threads N] [executor options below]
                                                 the hardware this agent sees and the executors it can run, measured
  join --coordinator MULTIADDR --token TOKEN     enroll this machine and stay connected
       (or --token-file PATH: the token from a file, kept out of argv and shell history)
       [--data-dir DIR] [--name NAME] [--heartbeat-interval SECONDS] [--threads N] [--no-train]
       [--max-memory SIZE]                         the most host memory a unit or a scoring task may plan with (8GiB, 512MiB)
       [--max-gpu-memory SIZE]                     the most GPU memory torch on CUDA may plan with (without it, --max-memory)
       [--executor auto|typescript|torch] [--device auto|cpu|cuda|cuda:N] [executor options below]
       [--verbose]                                 progress and waiting lines, not just one line per round
       [--metrics-port N [--metrics-host H]]      serve Prometheus metrics at http://H:N/metrics (H defaults to 127.0.0.1)
       [--no-shard-urls | --allow-private-shard-urls]  never fetch a run's shards by URL, or also from
                                                   loopback/private addresses (local tests)
       [--peer-listen MULTIADDR | --no-peer-exchange]  where the run's other agents reach this one for
                                                   checkpoints and shards (default: every interface, or
                                                   loopback for a coordinator on this machine); or never
                                                   exchange with peers and download only from the coordinator
  selftest [--golden FILE] [--executor typescript|torch] [--device D] [--python PATH]
                                                 known-answer checks of this machine's numerics
  train [--steps N] [--out DIR]                  train the small model on the demo corpus locally
  shard --out DIR [--shard-tokens N] FILE...     turn text files into byte-level training shards
  shard --out DIR --tokenizer gpt2 [--format jsonl --field text] [--base-url URL] FILE
                                                 tokenize one dataset file into shards, a document index and,
                                                 with --base-url, the run spec's "dataset" for serving them by URL
  help                                           this text

${EXECUTOR_USAGE}
`

type Command = (argv: string[]) => Promise<number>

const commands: Record<string, Command> = {
  info: runInfoCommand,
  join: runJoinCommand,
  selftest: runSelftestCommand,
  train: runTrainCommand,
  shard: runShardCommand
}

// `pnpm agent …` / `pnpm coordinator …` run from the repo root; resolve the user's relative
// paths (--golden FILE, --spec FILE, --data-dir) against the directory they typed them in.
if (process.env.INIT_CWD !== undefined && existsSync(process.env.INIT_CWD)) process.chdir(process.env.INIT_CWD)

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
  try {
    return await command(rest)
  } catch (err) {
    if (!isParseArgsError(err)) throw err
    // A usage mistake exits 2 as every other refused flag does, and says where the flags are listed.
    process.stderr.write(`barnraise-agent ${name}: ${err.message}\n(see \`barnraise-agent help\` for the commands and their flags)\n`)
    return 2
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  // An error's message may quote the coordinator (a reply's fields): plain text only.
  process.stderr.write(`barnraise-agent: ${toPlainText(String((err as Error)?.message ?? err), 'multi-line')}\n`)
  process.exitCode = 1
})

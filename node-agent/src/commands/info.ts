import { parseArgs } from 'node:util'
import { formatHardware, probeHardware } from '../hardware.ts'

/** `barnraise-agent info [--json]`: prints the hardware this agent sees. */
export async function runInfoCommand (argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } } })
  const hw = await probeHardware()
  process.stdout.write((values.json ? JSON.stringify(hw) : formatHardware(hw)) + '\n')
  return 0
}

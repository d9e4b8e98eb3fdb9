import { parseArgs } from 'node:util'
import { availableParallelism } from 'node:os'
import { formatHardware, probeHardware } from '../hardware.ts'
import { formatOffers, surveyExecutors } from '../executors/executor-choice.ts'
import { executorOptions, gpuFlagWithoutCuda, parseExecutorFlags } from '../executors/executor-flags.ts'

/**
 * `barnraise-agent info [--json] [--no-measure]`: prints the hardware this agent sees and the
 * executors it can run (TypeScript; torch on the CPU; torch on each CUDA device), each with a
 * short measured throughput unless --no-measure.
 */
export async function runInfoCommand (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      'no-measure': { type: 'boolean', default: false },
      threads: { type: 'string', default: String(availableParallelism()) },
      ...executorOptions
    }
  })
  const threads = Number(values.threads)
  // Refused as join refuses it: a typo must not silently measure one thread.
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    process.stderr.write('barnraise-agent info: --threads must be a whole number from 1 to 256\n')
    return 2
  }
  const flags = parseExecutorFlags(values, threads, 'auto')
  if (!flags.ok) {
    process.stderr.write(`barnraise-agent info: ${flags.message}\n`)
    return 2
  }
  const hw = await probeHardware()
  const { offers, executors } = await surveyExecutors(flags.settings, !values['no-measure'])
  for (const executor of executors.values()) await executor.close?.()
  // As join refuses it: a GPU cap on a machine whose torch offers no GPU is a mistake to say, not to ignore.
  if (flags.settings.gpuMemoryLimitBytes !== undefined && !offers.some((o) => o.kind === 'torch-cuda')) {
    process.stderr.write(`barnraise-agent info: ${gpuFlagWithoutCuda('this machine offers no torch executor on CUDA')}\n`)
    return 2
  }
  process.stdout.write((values.json ? JSON.stringify({ ...hw, executors: offers }) : `${formatHardware(hw)}\n${formatOffers(offers)}`) + '\n')
  return 0
}

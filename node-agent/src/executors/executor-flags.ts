// The command-line options that choose and configure an executor, shared by join, info and selftest.
import type { ExecutorChoice, ExecutorSettings } from './executor-choice.ts'
import { EXECUTOR_CHOICES } from './executor-choice.ts'
import { parseMemorySize } from '../memory-size.ts'
import type { Checkpointing, Precision, Sharding } from './torch-executor.ts'

/** parseArgs option declarations for the executor flags. */
export const executorOptions = {
  executor: { type: 'string' },
  python: { type: 'string' },
  device: { type: 'string', default: 'auto' },
  precision: { type: 'string', default: 'auto' },
  checkpointing: { type: 'string', default: 'auto' },
  'shard-optimizer': { type: 'string', default: 'auto' },
  'max-memory': { type: 'string' }
} as const

export const EXECUTOR_USAGE = `executor options:
  --executor auto|typescript|torch   auto (join's default) measures each and keeps the fastest (GFLOP/s)
  --device auto|cpu|cuda|cuda:N      torch's device (auto: the first GPU, else the CPU);
           cuda:all | cuda:0,cuda:1  several GPUs in one node: data parallel across them
  --python PATH                      an interpreter with torch (default: $BARNRAISE_PYTHON, python3, /usr/bin/python3)
  --precision auto|bf16|float32      auto: bf16 autocast on GPUs that support it, float32 elsewhere
  --checkpointing auto|on|off        activation checkpointing (auto: when a unit only fits with it)
  --shard-optimizer auto|on|off      several devices: share AdamW's moments over them (auto: when a
                                     replica of model and moments per device does not fit)
  --max-memory SIZE                  never plan to use more memory than this (8GiB, 512MiB; a bare number is GiB):
                                     the GPU's for torch on CUDA, the host's for the TypeScript trainer, torch on
                                     the CPU and scoring other nodes' reports (which already take at most half of it)`

// One device, every GPU, or a list of them (cpu,cpu runs two ranks on the CPU, for tests).
const DEVICE = /^(auto|cpu|cuda(:\d+)?|cuda:all|(cpu|cuda:\d+)(,(cpu|cuda:\d+))+)$/
const PRECISIONS: readonly string[] = ['auto', 'bf16', 'float32']
const CHECKPOINTING: readonly string[] = ['auto', 'on', 'off']
const SHARDING: readonly string[] = ['auto', 'on', 'off']

/** Validates the flags; returns the choice and settings, or a usage error message. */
export function parseExecutorFlags (values: { executor?: string, python?: string, device?: string, precision?: string, checkpointing?: string, 'shard-optimizer'?: string, 'max-memory'?: string }, threads: number, defaultChoice: ExecutorChoice):
{ ok: true, choice: ExecutorChoice, settings: ExecutorSettings } | { ok: false, message: string } {
  const choice = values.executor ?? defaultChoice
  if (!(EXECUTOR_CHOICES as readonly string[]).includes(choice)) return { ok: false, message: `--executor must be one of ${EXECUTOR_CHOICES.join(', ')}` }
  const device = values.device ?? 'auto'
  if (!DEVICE.test(device)) return { ok: false, message: '--device must be auto, cpu, cuda, cuda:N, cuda:all or a list such as cuda:0,cuda:1' }
  const precision = values.precision ?? 'auto'
  if (!PRECISIONS.includes(precision)) return { ok: false, message: '--precision must be auto, bf16 or float32' }
  const checkpointing = values.checkpointing ?? 'auto'
  if (!CHECKPOINTING.includes(checkpointing)) return { ok: false, message: '--checkpointing must be auto, on or off' }
  const sharding = values['shard-optimizer'] ?? 'auto'
  if (!SHARDING.includes(sharding)) return { ok: false, message: '--shard-optimizer must be auto, on or off' }
  let memoryLimitBytes: number | undefined
  if (values['max-memory'] !== undefined) {
    const size = parseMemorySize(values['max-memory'], '--max-memory')
    if (!size.ok) return size
    memoryLimitBytes = size.bytes
  }
  return {
    ok: true,
    choice: choice as ExecutorChoice,
    settings: {
      threads,
      device,
      precision: precision as Precision,
      checkpointing: checkpointing as Checkpointing,
      sharding: sharding as Sharding,
      ...(values.python !== undefined ? { python: values.python } : {}),
      ...(memoryLimitBytes !== undefined ? { memoryLimitBytes } : {})
    }
  }
}

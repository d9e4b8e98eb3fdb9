// The command-line options that choose and configure an executor, shared by join, info and selftest.
import type { ExecutorChoice, ExecutorSettings } from './executor-choice.ts'
import { EXECUTOR_CHOICES } from './executor-choice.ts'
import type { ExecutorKind } from './executor.ts'
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
  'max-memory': { type: 'string' },
  'max-gpu-memory': { type: 'string' }
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
  --max-memory SIZE                  never plan to use more host memory than this (8GiB, 512MiB; a bare number is
                                     GiB): the TypeScript trainer, torch on the CPU, the agent's own copies of a
                                     torch unit's weights, and scoring other nodes' reports (which already take at
                                     most half of it). On CUDA without --max-gpu-memory it caps the GPU instead,
                                     as before the two were split (and scoring's host memory)
  --max-gpu-memory SIZE              torch on CUDA: never plan to use more GPU memory than this (each GPU of
                                     several); an executor that is not on CUDA refuses it`

// One device, every GPU, or a list of them (cpu,cpu runs two ranks on the CPU, for tests).
const DEVICE = /^(auto|cpu|cuda(:\d+)?|cuda:all|(cpu|cuda:\d+)(,(cpu|cuda:\d+))+)$/
const PRECISIONS: readonly string[] = ['auto', 'bf16', 'float32']
const CHECKPOINTING: readonly string[] = ['auto', 'on', 'off']
const SHARDING: readonly string[] = ['auto', 'on', 'off']

/** Validates the flags; returns the choice and settings, or a usage error message. */
export function parseExecutorFlags (values: { executor?: string, python?: string, device?: string, precision?: string, checkpointing?: string, 'shard-optimizer'?: string, 'max-memory'?: string, 'max-gpu-memory'?: string }, threads: number, defaultChoice: ExecutorChoice):
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
  let hostMemoryLimitBytes: number | undefined
  if (values['max-memory'] !== undefined) {
    const size = parseMemorySize(values['max-memory'], '--max-memory')
    if (!size.ok) return size
    hostMemoryLimitBytes = size.bytes
  }
  let gpuMemoryLimitBytes: number | undefined
  if (values['max-gpu-memory'] !== undefined) {
    const size = parseMemorySize(values['max-gpu-memory'], '--max-gpu-memory')
    if (!size.ok) return size
    // What the flags already rule out is refused here; auto and torch on --device auto are
    // checked once the executor is chosen (memoryFlagsFor).
    if (choice === 'typescript') return { ok: false, message: gpuFlagWithoutCuda('--executor typescript trains on the CPU') }
    if (/^cpu(,cpu)*$/.test(device)) return { ok: false, message: gpuFlagWithoutCuda(`--device ${device} trains on the CPU`) }
    gpuMemoryLimitBytes = size.bytes
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
      ...(hostMemoryLimitBytes !== undefined ? { hostMemoryLimitBytes } : {}),
      ...(gpuMemoryLimitBytes !== undefined ? { gpuMemoryLimitBytes } : {})
    }
  }
}

/** The usage error of --max-gpu-memory where no executor runs on CUDA, `why` saying which. */
export function gpuFlagWithoutCuda (why: string): string {
  return `--max-gpu-memory caps GPU memory for torch on CUDA, but ${why}; drop it (--max-memory caps this host's memory), or train on a GPU with --executor torch --device cuda`
}

/**
 * The memory flags against the executor join chose (`kind`, `name`): --max-gpu-memory on one not
 * on CUDA is a usage error; on CUDA without it, a note that --max-memory caps the GPU (its old meaning)
 * (deviceMemoryCap says why), for join to print.
 */
export function memoryFlagsFor (kind: ExecutorKind, name: string, settings: Pick<ExecutorSettings, 'hostMemoryLimitBytes' | 'gpuMemoryLimitBytes'>): { ok: true, note?: string } | { ok: false, message: string } {
  if (settings.gpuMemoryLimitBytes !== undefined && kind !== 'torch-cuda') return { ok: false, message: gpuFlagWithoutCuda(`the executor chosen, ${name} (${kind}), does not run on a GPU`) }
  if (kind === 'torch-cuda' && settings.gpuMemoryLimitBytes === undefined && settings.hostMemoryLimitBytes !== undefined) {
    const gib = (settings.hostMemoryLimitBytes / 2 ** 30).toFixed(1)
    return { ok: true, note: `agent: --max-memory ${gib} GiB caps the GPU, as before --max-gpu-memory existed (and scoring's host memory), not the agent's host copies of a unit; give --max-gpu-memory SIZE for the GPU and --max-memory then caps this host` }
  }
  return { ok: true }
}

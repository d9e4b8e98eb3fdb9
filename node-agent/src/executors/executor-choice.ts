// Which executors this machine can run, how fast each trains, and `--executor auto|typescript|torch`.
// Throughput is measured through each executor's real train() path (the torch child protocol
// included) on a model sized for the device: the small preset on CPUs, the 125M preset on GPUs
// (the 0.2M-parameter demo model leaves a GPU waiting on kernel launches, and would rank one GPU
// above several, whose gradient all-reduce it cannot hide). auto keeps the highest achieved
// GFLOP/s (6 × parameters × tokens/s), which is comparable across the two models.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { countParams, initParams, presetConfig } from '@barnraise/trainer'
import type { Executor, ExecutorKind } from './executor.ts'
import { ExecutorError } from './executor-error.ts'
import { TorchExecutor } from './torch-executor.ts'
import type { Checkpointing, Precision, Sharding } from './torch-executor.ts'
import { TypeScriptExecutor } from './typescript-executor.ts'
import { randomBatches, syntheticUnit } from './synthetic-unit.ts'

export type ExecutorChoice = 'auto' | 'typescript' | 'torch'

export const EXECUTOR_CHOICES: readonly ExecutorChoice[] = ['auto', 'typescript', 'torch']

export interface ExecutorSettings {
  threads: number
  python?: string
  /** torch device: auto, cpu, cuda, cuda:N, cuda:all or a list such as cuda:0,cuda:1 */
  device?: string
  precision?: Precision
  checkpointing?: Checkpointing
  sharding?: Sharding
  /** --max-memory: the most host memory a unit or a scoring task may plan to use, whatever the executor (on CUDA without `gpuMemoryLimitBytes` it caps the GPU instead and scoring's host memory: deviceMemoryCap, trainingHostCap) */
  hostMemoryLimitBytes?: number
  /** --max-gpu-memory: the most GPU memory torch on CUDA may plan to use */
  gpuMemoryLimitBytes?: number
  log?: (line: string) => void
}

/** One executor this machine offers: measured, or the reason it cannot run. */
export interface ExecutorOffer {
  /** typescript, torch-cpu, torch-cuda:0 … */
  id: string
  kind: ExecutorKind
  description: string
  memoryBytes?: number
  tokensPerSecond?: number
  /** 6 × parameters × tokens/s of the measurement model */
  gflops?: number
  /** the measurement's model and batch, e.g. "small, batch 8 × 128" */
  measuredOn?: string
  error?: { code: string, message: string }
}

/** What an offer is measured on: a one-step warm-up round, then a timed round of `steps`. */
export interface Workload { preset: string, batchSize: number, seqLen: number, steps: number }

/** The workload for an executor of `kind` on `devices` devices: the small preset on CPUs; the 125M preset at batch 8 × 512 per GPU. */
export function workloadFor (kind: ExecutorKind, devices = 1): Workload {
  return kind === 'torch-cuda'
    ? { preset: '125m', batchSize: 8 * devices, seqLen: 512, steps: 4 }
    : { preset: 'small', batchSize: 8, seqLen: 128, steps: 4 }
}

/** Training tokens/s and GFLOP/s of an executor on its workload (`workloadFor`). */
export async function measureExecutor (executor: Executor, workload = workloadFor(executor.kind, executor instanceof TorchExecutor ? executor.devices : 1)): Promise<{ tokensPerSecond: number, gflops: number, measuredOn: string }> {
  const { preset, batchSize, seqLen, steps } = workload
  const config = presetConfig(preset)
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-measure-'))
  try {
    const base = initParams(config, 1).flat
    const batches = randomBatches(1, config.vocab_size, batchSize, seqLen)
    const quiet = { onProgress: () => {}, signal: new AbortController().signal, stateDir: dir, base, batches }
    // The warm-up round pays for allocation, the worker pool or child model, and lazy optimizer state.
    await executor.train({ unit: syntheticUnit(config, { innerSteps: 1, batchSize, seqLen }), ...quiet })
    const result = await executor.train({ unit: syntheticUnit(config, { innerSteps: steps, batchSize, seqLen }), ...quiet })
    // The state write overlaps what follows a round; here what follows is removing its folder.
    await executor.flush?.()
    const tokensPerSecond = result.tokens / result.computeSeconds
    return { tokensPerSecond, gflops: 6 * countParams(config) * tokensPerSecond / 1e9, measuredOn: `${preset}, batch ${batchSize} × ${seqLen}` }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function offerOf (id: string, executor: Executor, measure: boolean, memoryBytes?: number): Promise<ExecutorOffer> {
  const offer: ExecutorOffer = { id, kind: executor.kind, description: executor.name, ...(memoryBytes !== undefined ? { memoryBytes } : {}) }
  if (!measure) return offer
  try {
    return { ...offer, ...await measureExecutor(executor) }
  } catch (err) {
    return { ...offer, error: errorOf(err) }
  }
}

/** The most CPU ranks auto tries: each holds a replica, and the measured batch has 8 rows. */
const MAX_CPU_RANKS = 8

function errorOf (err: unknown): { code: string, message: string } {
  return { code: err instanceof ExecutorError ? err.code : 'ERR_EXECUTOR', message: (err as Error).message }
}

/**
 * Every executor this machine can run — TypeScript; torch on the CPU, as one process and (with
 * --threads of 2 or more) as one rank a core; torch on each CUDA device — each measured unless `measure` is false. Torch that cannot start is listed with
 * its error (what to install). Returns the started executors too, so a caller can keep one.
 */
export async function surveyExecutors (settings: ExecutorSettings, measure = true): Promise<{ offers: ExecutorOffer[], executors: Map<string, Executor> }> {
  const offers: ExecutorOffer[] = []
  const executors = new Map<string, Executor>()
  const ts = new TypeScriptExecutor({ threads: settings.threads, maxMemoryBytes: settings.hostMemoryLimitBytes })
  executors.set('typescript', ts)
  offers.push(await offerOf('typescript', ts, measure))
  let cpu: TorchExecutor
  try {
    cpu = await TorchExecutor.start({ ...settings, device: 'cpu' })
  } catch (err) {
    offers.push({ id: 'torch', kind: 'torch-cpu', description: 'PyTorch', error: errorOf(err) })
    return { offers, executors }
  }
  executors.set('torch-cpu', cpu)
  offers.push(await offerOf('torch-cpu', cpu, measure))
  // The cores as ranks of one thread each, data parallel: torch spreads a small model's matmuls
  // over threads poorly (on a 2-core VM two ranks trained 2.1× the tokens of one process on both
  // cores), and a measurement says which way this machine goes.
  const cpuRanks = Math.min(settings.threads, MAX_CPU_RANKS)
  if (cpuRanks >= 2 && (settings.device === undefined || settings.device === 'auto' || settings.device === 'cpu')) {
    const id = `torch-cpu×${cpuRanks}`
    try {
      const ranks = await TorchExecutor.start({ ...settings, python: cpu.python, device: Array<string>(cpuRanks).fill('cpu').join(','), threads: 1 })
      executors.set(id, ranks)
      offers.push(await offerOf(id, ranks, measure))
    } catch (err) {
      offers.push({ id, kind: 'torch-cpu', description: `PyTorch on CPU (1 thread × ${cpuRanks} ranks)`, error: errorOf(err) })
    }
  }
  const gpus = cpu.ready.devices.filter((d) => d.kind === 'cuda')
  const groups: Array<{ name: string, label: string, memoryBytes?: number }> = gpus.map((d) => ({ name: d.name, label: d.label, memoryBytes: d.totalBytes }))
  // Several GPUs in one node, data parallel: every GPU, or the list named with --device. Each
  // holds a full replica, so the smallest GPU's memory is what bounds a unit.
  const several = settings.device !== undefined && (settings.device === 'cuda:all' || settings.device.includes(',')) ? settings.device : gpus.length > 1 ? 'cuda:all' : undefined
  if (several !== undefined && several.startsWith('cuda')) {
    const named = several === 'cuda:all' ? gpus : gpus.filter((d) => several.split(',').includes(d.name))
    // A list naming a GPU this machine lacks still gets an offer: starting it says which is missing.
    groups.push({ name: several, label: `${named.length} × ${named[0]?.label ?? 'GPU'}`, ...(named.length > 0 ? { memoryBytes: Math.min(...named.map((d) => d.totalBytes)) } : {}) })
  }
  for (const device of groups) {
    try {
      const gpu = await TorchExecutor.start({ ...settings, python: cpu.python, device: device.name })
      executors.set(`torch-${device.name}`, gpu)
      offers.push(await offerOf(`torch-${device.name}`, gpu, measure, device.memoryBytes))
    } catch (err) {
      offers.push({ id: `torch-${device.name}`, kind: 'torch-cuda', description: `PyTorch on ${device.label} (${device.name})`, ...(device.memoryBytes !== undefined ? { memoryBytes: device.memoryBytes } : {}), error: errorOf(err) })
    }
  }
  return { offers, executors }
}

/** The offers as a table for people. */
export function formatOffers (offers: ExecutorOffer[]): string {
  const lines = ['executors (training throughput on a model sized for each device; auto keeps the highest GFLOP/s):']
  for (const o of offers) {
    const memory = o.memoryBytes !== undefined ? `, ${(o.memoryBytes / 2 ** 30).toFixed(1)} GiB` : ''
    const speed = o.error !== undefined
      ? `unavailable (${o.error.code}): ${o.error.message}`
      : o.tokensPerSecond !== undefined ? `${Math.round(o.tokensPerSecond).toLocaleString('en-US')} tokens/s, ${o.gflops!.toFixed(2)} GFLOP/s (${o.measuredOn ?? ''})` : 'available'
    lines.push(`  ${o.id.padEnd(12)} ${o.description}${memory}: ${speed}`)
  }
  return lines.join('\n')
}

/**
 * The executor for `--executor`: typescript; torch (on --device, errors thrown with what to
 * install); or auto — every option measured, the highest GFLOP/s kept, the rest closed. Auto falls
 * back to TypeScript, saying why, when torch cannot start.
 */
export async function createExecutor (choice: ExecutorChoice, settings: ExecutorSettings): Promise<{ executor: Executor, offers?: ExecutorOffer[] }> {
  if (choice === 'typescript') return { executor: new TypeScriptExecutor({ threads: settings.threads, maxMemoryBytes: settings.hostMemoryLimitBytes }) }
  if (choice === 'torch') return { executor: await TorchExecutor.start(settings) }
  const { offers, executors } = await surveyExecutors(settings)
  // An explicit --device limits auto to that device (and the CPU executors).
  const allowed = offers.filter((o) => o.error === undefined && o.gflops !== undefined &&
    (settings.device === undefined || settings.device === 'auto' || !o.id.startsWith('torch-cuda') || o.id === `torch-${settings.device}`))
  const best = allowed.reduce<ExecutorOffer | undefined>((b, o) => (b === undefined || o.gflops! > b.gflops! ? o : b), undefined)
  const id = best?.id ?? 'typescript'
  for (const [key, executor] of executors) if (key !== id) await executor.close?.()
  return { executor: executors.get(id)!, offers }
}

import { totalmem } from 'node:os'
import type { ScoreResult, ScoringTask } from '@barnraise/protocol'
import { AGENT_SCORING_MAX_FLOPS, AGENT_TORCH_SCORING_MAX_FLOPS, SCORING_MEMORY_SHARE, ShardError, TORCH_MAX_PARAMS, TYPESCRIPT_MAX_PARAMS, callWorker, countParams, decodeShard, scoringTaskBytes, scoringTaskFlops, torchScoringTaskBytes } from '@barnraise/trainer'
import type { BlobCache } from './blob-cache.ts'
import { BlobSizeError } from './blob-cache.ts'
import { storedCheckpointByteLength } from './blob-sizes.ts'
import type { Executor } from './executors/executor.ts'
import { ExecutorError } from './executors/executor-error.ts'
import { TorchExecutor } from './executors/torch-executor.ts'
import type { MemoryCap } from './executors/torch-executor.ts'
import type { DeltaJob } from './delta-worker.ts'
import type { ScoringJob, ScoringReply } from './scoring-worker.ts'

/** What an agent scores with, and within what. */
export interface ScoringOptions {
  /** this machine's memory (default: the host's) */
  memoryBytes?: number
  /** --max-memory: the most host memory a scoring task may plan to use, where less than its share of the machine (the GPU's cap is the executor's: --max-gpu-memory) */
  maxMemoryBytes?: number
  /** the executor this agent trains with: a TorchExecutor scores with its child, any other leaves it to the TypeScript forward pass */
  executor?: Executor
  /** a folder for the torch child's files (the torch path only) */
  dir?: string
}

/**
 * The scales the torch child measures weights + s·Δ at, in the order of a ScoreResult: the base
 * (s = 0), after (base − Δ: Δ = θ_base − θ_local, so the update the report proposes) and
 * reversed (base + Δ), as scoring-worker.ts computes them.
 */
export const TORCH_SCORING_SCALES = [0, -1, 1]

/**
 * Scores another node's report (rounds/node-scoring.ts on the coordinator): the held-out loss
 * of the base weights, of base − Δ and of base + Δ on the task's windows. An agent training
 * with the torch executor measures them in its child, in float32 (evaluate.py), where a large
 * model takes seconds on a GPU; any other uses the TypeScript trainer's forward pass on a worker
 * thread, as does a torch agent for a task its device cannot take but the TypeScript limits can.
 * Honest scorers of either kind agree to float32 rounding (tested across languages). A task
 * whose windows, weights or report do not fit its model, or that this machine refuses, is
 * answered with no losses (`malformed`); only an abort or a failed download throws.
 */
export async function scoreReport (cache: BlobCache, task: ScoringTask, signal: AbortSignal, options: ScoringOptions = {}): Promise<ScoreResult | { malformed: string }> {
  const memoryBytes = options.memoryBytes ?? totalmem()
  const typescript = scoringRefusal(task, memoryBytes, options.maxMemoryBytes)
  const torch = options.executor instanceof TorchExecutor && options.dir !== undefined ? options.executor : undefined
  let useTorch = false
  if (torch !== undefined) {
    const refusal = torchScoringRefusal(task, torchScoringMachine(torch, task, options.maxMemoryBytes))
    // A task the TypeScript limits take is one the coordinator may hand any node: score it so.
    if (refusal !== undefined && typescript !== undefined) return { malformed: refusal }
    useTorch = refusal === undefined
  } else if (typescript !== undefined) {
    return { malformed: typescript }
  }
  const window = task.seqLen + 1
  let tokens: ReturnType<typeof decodeShard>['tokens']
  try {
    tokens = decodeShard(await cache.get(task.windows, signal)).tokens
  } catch (err) {
    // The coordinator's bytes, hashed right but not a shard: a bad task. Thrown, it read as a
    // network failure: the task went unanswered and its windows stayed on this disk.
    if (!(err instanceof ShardError)) throw err
    return { malformed: `the scoring windows are not a token shard (${err.code}: ${err.message})` }
  }
  if (tokens.length !== task.batchSize * window) return { malformed: `${tokens.length} token ids for ${task.batchSize} windows of ${window}` }
  const ids = Int32Array.from(tokens)
  if (ids.some((t) => t >= task.modelConfig.vocab_size)) return { malformed: 'a token id is past the vocabulary' }
  let checkpoint: Uint8Array
  try {
    checkpoint = await cache.get(task.baseCheckpoint, signal, undefined, { bytes: storedCheckpointByteLength(task.modelConfig), what: 'the task\'s base checkpoint' })
  } catch (err) {
    // Not this model's size: a bad task, refused before its bytes came.
    if (!(err instanceof BlobSizeError)) throw err
    return { malformed: err.message }
  }
  // Another node's report: from the coordinator only, never offered on to peers (blob-cache.ts).
  const report = async (): Promise<Uint8Array> => await cache.get(task.report, signal, undefined, { share: false })
  if (useTorch) return await scoreWithTorch(torch!, options.dir!, task, checkpoint, report, ids, signal)
  const job: ScoringJob = { config: task.modelConfig, checkpoint, report: await report(), codec: task.codec, ids, batchSize: task.batchSize, seqLen: task.seqLen }
  try {
    return { taskId: task.taskId, ...await inWorker(job, signal) }
  } catch (err) {
    if (signal.aborted) throw err
    // Weights or a payload that do not decode for this model: a bad task, not a broken agent.
    return { malformed: err instanceof Error ? err.message : String(err) }
  }
}

/**
 * The torch path of scoreReport: Δ decoded on a worker thread (the payload is let go once it is:
 * the agent holds the checkpoint and Δ while the child measures), the three losses from the child.
 */
async function scoreWithTorch (torch: TorchExecutor, dir: string, task: ScoringTask, checkpoint: Uint8Array, report: () => Promise<Uint8Array>, ids: Int32Array, signal: AbortSignal): Promise<ScoreResult | { malformed: string }> {
  let payload: Uint8Array | undefined = await report()
  try {
    const decoding = decodeInWorker({ codec: task.codec, payload, length: countParams(task.modelConfig) }, signal)
    // Copied into the worker: nothing here needs it once Δ is back.
    payload = undefined
    const delta = await decoding
    const deadline = Date.parse(task.deadline)
    const { losses } = await torch.heldOutLosses({
      config: task.modelConfig,
      weights: checkpoint,
      delta,
      scales: TORCH_SCORING_SCALES,
      tokens: ids,
      batches: 1,
      batchSize: task.batchSize,
      seqLen: task.seqLen,
      dir,
      signal,
      ...(Number.isFinite(deadline) ? { deadline } : {})
    })
    return { taskId: task.taskId, base: losses[0] ?? null, after: losses[1] ?? null, reversed: losses[2] ?? null }
  } catch (err) {
    if (signal.aborted) throw err
    // The child's refusal (weights that do not fit the model, out of memory, too slow) or its
    // failure (crashed, hung: the next request starts a fresh child), or a payload that does not
    // decode: this task goes unanswered, the agent goes on.
    return { malformed: err instanceof ExecutorError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err) }
  }
}

/**
 * Why this machine will not score `task`, or undefined: a model past what the TypeScript
 * forward pass trains, more work than the coordinator ever asks (AGENT_SCORING_MAX_FLOPS), or
 * more than SCORING_MEMORY_SHARE of this machine's memory (three copies of the weights, each
 * layer's T² attention, the logits), all counted by the trainer's cost.ts as the coordinator
 * counts them; nor more than `maxMemoryBytes` (--max-memory) where that is less. The task is the
 * coordinator's word, and a hostile one could ask for anything the schema allows.
 */
export function scoringRefusal (task: Pick<ScoringTask, 'modelConfig' | 'batchSize' | 'seqLen'>, memoryBytes: number, maxMemoryBytes?: number): string | undefined {
  const c = task.modelConfig
  const params = countParams(c)
  if (params > TYPESCRIPT_MAX_PARAMS) return `a ${params.toLocaleString('en-US')}-parameter model is past what this agent scores (${TYPESCRIPT_MAX_PARAMS.toLocaleString('en-US')})`
  const flops = scoringTaskFlops(c, task.batchSize, task.seqLen)
  if (flops > AGENT_SCORING_MAX_FLOPS) return `scoring would take ${(flops / 1e12).toFixed(1)} TFLOP; this agent scores at most ${AGENT_SCORING_MAX_FLOPS / 1e12} TFLOP a task`
  const bytes = scoringTaskBytes(c, task.batchSize, task.seqLen)
  if (maxMemoryBytes !== undefined && maxMemoryBytes < SCORING_MEMORY_SHARE * memoryBytes && bytes > maxMemoryBytes) return `scoring would need ${(bytes / 2 ** 30).toFixed(1)} GiB of memory; --max-memory allows ${(maxMemoryBytes / 2 ** 30).toFixed(1)} GiB`
  if (bytes > SCORING_MEMORY_SHARE * memoryBytes) return `scoring would need ${(bytes / 2 ** 30).toFixed(1)} GiB of memory; this machine has ${(memoryBytes / 2 ** 30).toFixed(1)} GiB`
  return undefined
}

/** What a torch scorer has to spend on a task: its evaluation device, the memory flags, and its speed. */
export interface TorchScoringMachine {
  executor: 'torch-cpu' | 'torch-cuda'
  /** the evaluation device's memory (the host's on torch-cpu), total and free, as the child reported them at start */
  totalBytes: number
  freeBytes: number
  /** the cap on the evaluation device and the flag that set it: --max-gpu-memory on CUDA (or --max-memory without it), --max-memory on the CPU */
  deviceLimit?: MemoryCap
  /** --max-memory on torch-cuda: the host memory for the agent's copies of the checkpoint and Δ while the GPU measures */
  hostLimitBytes?: number
  /** forward FLOP/s expected on the task's model (TorchExecutor.evaluationFlopsPerSecond); undefined when nothing was measured */
  flopsPerSecond?: number
}

/** Forward FLOP/s assumed of a torch scorer that has neither trained nor scored the model yet (as the executor's hang bound assumes). */
export const SLOWEST_SCORING_FLOPS = 1e9

/** The executor's figures for `torchScoringRefusal`; `maxMemoryBytes` is the work loop's --max-memory. */
export function torchScoringMachine (torch: TorchExecutor, task: Pick<ScoringTask, 'modelConfig'>, maxMemoryBytes?: number): TorchScoringMachine {
  const device = torch.evaluationDevice
  const onCuda = torch.kind === 'torch-cuda'
  // --max-memory reaches the executor too; the lower of the two holds.
  const hosts = [maxMemoryBytes, torch.hostMemoryLimitBytes].filter((b): b is number => b !== undefined)
  const host = hosts.length > 0 ? Math.min(...hosts) : undefined
  const deviceLimit = onCuda ? torch.deviceMemoryCap : host !== undefined ? { bytes: host, flag: '--max-memory' as const } : undefined
  const flopsPerSecond = torch.evaluationFlopsPerSecond(task.modelConfig)
  return {
    executor: onCuda ? 'torch-cuda' : 'torch-cpu',
    totalBytes: device?.totalBytes ?? 0,
    freeBytes: device?.freeBytes ?? 0,
    ...(deviceLimit !== undefined ? { deviceLimit } : {}),
    ...(onCuda && host !== undefined ? { hostLimitBytes: host } : {}),
    ...(flopsPerSecond !== undefined ? { flopsPerSecond } : {})
  }
}

/**
 * Host bytes a torch-cuda agent holds while its child scores: the checkpoint as fetched and the
 * decoded Δ, 4 bytes a parameter each (torchScoringTaskBytes counts the same on torch-cpu, where
 * they share the device's memory).
 */
export function torchScoringHostBytes (config: ScoringTask['modelConfig']): number {
  return 8 * countParams(config)
}

/**
 * Why the torch executor will not score `task`, or undefined: a model past what the agent holds
 * (TORCH_MAX_PARAMS), more work than any torch scorer takes (AGENT_TORCH_SCORING_MAX_FLOPS), more
 * memory than SCORING_MEMORY_SHARE of its device (the host on torch-cpu), than the device had
 * free or than its cap allows (cost.ts's torchScoringTaskBytes, as the coordinator counts it,
 * against --max-gpu-memory on CUDA, --max-memory on the CPU), on CUDA more host memory for the
 * agent's copies than --max-memory allows, or more time than half of what is left of the round at the speed it measured (1 GFLOP/s
 * when it has measured nothing): an answer after the deadline counts for nothing. A deadline
 * already past (or a skewed clock) is the coordinator's call.
 */
export function torchScoringRefusal (task: Pick<ScoringTask, 'modelConfig' | 'batchSize' | 'seqLen' | 'deadline'>, m: TorchScoringMachine, now = Date.now()): string | undefined {
  const c = task.modelConfig
  const params = countParams(c)
  if (params > TORCH_MAX_PARAMS) return `a ${params.toLocaleString('en-US')}-parameter model is past what this agent holds (${TORCH_MAX_PARAMS.toLocaleString('en-US')})`
  const flops = scoringTaskFlops(c, task.batchSize, task.seqLen)
  if (flops > AGENT_TORCH_SCORING_MAX_FLOPS) return `scoring would take ${(flops / 1e12).toFixed(1)} TFLOP; this agent scores at most ${AGENT_TORCH_SCORING_MAX_FLOPS / 1e12} TFLOP a task`
  const bytes = torchScoringTaskBytes(c, task.batchSize, task.seqLen, m.executor)
  const gib = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GiB`
  const where = m.executor === 'torch-cuda' ? 'GPU' : 'machine'
  if (m.deviceLimit !== undefined && bytes > m.deviceLimit.bytes) {
    const too = m.executor === 'torch-cuda' && m.deviceLimit.flag === '--max-memory' ? ' (it caps the GPU too while --max-gpu-memory is not given)' : ''
    return `scoring would need ${gib(bytes)} of memory; ${m.deviceLimit.flag} allows ${gib(m.deviceLimit.bytes)}${too}`
  }
  if (m.executor === 'torch-cuda' && m.hostLimitBytes !== undefined && torchScoringHostBytes(c) > m.hostLimitBytes) {
    return `scoring would need ${gib(torchScoringHostBytes(c))} of host memory for the checkpoint and Δ; --max-memory allows ${gib(m.hostLimitBytes)}`
  }
  if (bytes > SCORING_MEMORY_SHARE * m.totalBytes) return `scoring would need ${gib(bytes)} of memory; this ${where} has ${gib(m.totalBytes)}`
  if (bytes > m.freeBytes) return `scoring would need ${gib(bytes)} of memory; this ${where} had ${gib(m.freeBytes)} free`
  const left = (Date.parse(task.deadline) - now) / 1000
  const seconds = flops / (m.flopsPerSecond !== undefined && m.flopsPerSecond > 0 ? m.flopsPerSecond : SLOWEST_SCORING_FLOPS)
  if (left > 0 && seconds > left / 2) return `scoring would take about ${Math.ceil(seconds)} s at ${((m.flopsPerSecond ?? SLOWEST_SCORING_FLOPS) / 1e9).toFixed(1)} GFLOP/s${m.flopsPerSecond === undefined ? ' (nothing measured yet)' : ''}, more than half of the ${Math.floor(left)} s left in the round`
  return undefined
}

/** Runs a scoring job on a worker thread: a large model's three passes take minutes, and the agent must go on answering. */
async function inWorker (job: ScoringJob, signal: AbortSignal): Promise<ScoringReply> {
  return await callWorker<ScoringReply>(new URL('./scoring-worker.ts', import.meta.url), { what: 'the scoring worker', workerData: job, signal })
}

/** Decodes a report into Δ on a worker thread: a 1B model's is a billion values. */
async function decodeInWorker (job: DeltaJob, signal: AbortSignal): Promise<Float32Array> {
  return await callWorker<Float32Array>(new URL('./delta-worker.ts', import.meta.url), { what: 'the worker decoding a report', workerData: job, signal })
}

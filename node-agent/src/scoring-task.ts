import { totalmem } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { ScoreResult, ScoringTask } from '@barnraise/protocol'
import { countParams, decodeShard } from '@barnraise/trainer'
import { TYPESCRIPT_MAX_PARAMS } from './executors/typescript-executor.ts'
import type { BlobCache } from './blob-cache.ts'
import type { ScoringJob, ScoringReply } from './scoring-worker.ts'

/**
 * Scores another node's report (rounds/node-scoring.ts on the coordinator): the held-out loss
 * of the base weights, of base − Δ and of base + Δ on the task's windows, with the TypeScript
 * trainer's forward pass whatever executor trains here (every scorer runs the same arithmetic,
 * so honest scorers agree), on a worker thread. A task whose windows, weights or report do not
 * fit its model is answered with no losses.
 */
export async function scoreReport (cache: BlobCache, task: ScoringTask, signal: AbortSignal, memoryBytes = totalmem()): Promise<ScoreResult | { malformed: string }> {
  const refusal = scoringRefusal(task, memoryBytes)
  if (refusal !== undefined) return { malformed: refusal }
  const window = task.seqLen + 1
  const tokens = decodeShard(await cache.get(task.windows, signal)).tokens
  if (tokens.length !== task.batchSize * window) return { malformed: `${tokens.length} token ids for ${task.batchSize} windows of ${window}` }
  const ids = Int32Array.from(tokens)
  if (ids.some((t) => t >= task.modelConfig.vocab_size)) return { malformed: 'a token id is past the vocabulary' }
  const job: ScoringJob = {
    config: task.modelConfig,
    checkpoint: await cache.get(task.baseCheckpoint, signal),
    // Another node's report: from the coordinator only, never offered on to peers (blob-cache.ts).
    report: await cache.get(task.report, signal, undefined, { share: false }),
    codec: task.codec,
    ids,
    batchSize: task.batchSize,
    seqLen: task.seqLen
  }
  try {
    return { taskId: task.taskId, ...await inWorker(job, signal) }
  } catch (err) {
    if (signal.aborted) throw err
    // Weights or a payload that do not decode for this model: a bad task, not a broken agent.
    return { malformed: err instanceof Error ? err.message : String(err) }
  }
}

/** The most forward-pass work a scoring task may ask (the coordinator asks at most 1 TFLOP: NODE_SCORING_MAX_FLOPS), with room. */
export const MAX_SCORING_FLOPS = 2e12

/**
 * Why this machine will not score `task`, or undefined: a model past what the TypeScript
 * forward pass trains, more work than the coordinator ever asks, or more memory than half of
 * this machine's (three copies of the weights, each layer's T² attention, the logits). The
 * task is the coordinator's word, and a hostile one could ask for anything the schema allows.
 */
export function scoringRefusal (task: Pick<ScoringTask, 'modelConfig' | 'batchSize' | 'seqLen'>, memoryBytes: number): string | undefined {
  const c = task.modelConfig
  const params = countParams(c)
  if (params > TYPESCRIPT_MAX_PARAMS) return `a ${params.toLocaleString('en-US')}-parameter model is past what this agent scores (${TYPESCRIPT_MAX_PARAMS.toLocaleString('en-US')})`
  const b = task.batchSize
  const t = task.seqLen
  const attention = c.num_hidden_layers * b * c.num_attention_heads * t * t
  const flops = 3 * (2 * params * b * t + 4 * attention * c.head_dim)
  if (flops > MAX_SCORING_FLOPS) return `scoring would take ${(flops / 1e12).toFixed(1)} TFLOP; this agent scores at most ${MAX_SCORING_FLOPS / 1e12} TFLOP a task`
  const bytes = 4 * (3 * params + attention + b * t * (c.vocab_size + c.num_hidden_layers * (10 * c.hidden_size + 3 * c.intermediate_size)))
  if (bytes > memoryBytes / 2) return `scoring would need ${(bytes / 2 ** 30).toFixed(1)} GiB of memory; this machine has ${(memoryBytes / 2 ** 30).toFixed(1)} GiB`
  return undefined
}

/** Runs a scoring job on a worker thread: a large model's three passes take minutes, and the agent must go on answering. */
async function inWorker (job: ScoringJob, signal: AbortSignal): Promise<ScoringReply> {
  signal.throwIfAborted()
  const worker = new Worker(new URL('./scoring-worker.ts', import.meta.url), { workerData: job })
  let stop: () => void = () => {}
  const abort = (): void => { stop(); void worker.terminate() }
  signal.addEventListener('abort', abort, { once: true })
  try {
    return await new Promise((resolve, reject) => {
      // Removed with `abort` below: the agent's signal outlives every task.
      stop = () => { reject(signal.reason) }
      worker.once('message', (m: ScoringReply) => { resolve(m) })
      worker.once('error', reject)
      worker.once('exit', (code) => { reject(new Error(`the scoring worker stopped (exit ${code}) before finishing`)) })
    })
  } finally {
    signal.removeEventListener('abort', abort)
    await worker.terminate()
  }
}

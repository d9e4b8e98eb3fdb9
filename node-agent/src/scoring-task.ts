import { Worker } from 'node:worker_threads'
import type { ScoreResult, ScoringTask } from '@barnraise/protocol'
import { decodeShard } from '@barnraise/trainer'
import type { BlobCache } from './blob-cache.ts'
import type { ScoringJob, ScoringReply } from './scoring-worker.ts'

/**
 * Scores another node's report (rounds/node-scoring.ts on the coordinator): the held-out loss
 * of the base weights, of base − Δ and of base + Δ on the task's windows, with the TypeScript
 * trainer's forward pass whatever executor trains here (every scorer runs the same arithmetic,
 * so honest scorers agree), on a worker thread. A task whose windows, weights or report do not
 * fit its model is answered with no losses.
 */
export async function scoreReport (cache: BlobCache, task: ScoringTask, signal: AbortSignal): Promise<ScoreResult | { malformed: string }> {
  const window = task.seqLen + 1
  const tokens = decodeShard(await cache.get(task.windows, signal)).tokens
  if (tokens.length !== task.batchSize * window) return { malformed: `${tokens.length} token ids for ${task.batchSize} windows of ${window}` }
  const ids = Int32Array.from(tokens)
  if (ids.some((t) => t >= task.modelConfig.vocab_size)) return { malformed: 'a token id is past the vocabulary' }
  const job: ScoringJob = {
    config: task.modelConfig,
    checkpoint: await cache.get(task.baseCheckpoint, signal),
    report: await cache.get(task.report, signal),
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

/** Runs a scoring job on a worker thread: a large model's three passes take minutes, and the agent must go on answering. */
async function inWorker (job: ScoringJob, signal: AbortSignal): Promise<ScoringReply> {
  signal.throwIfAborted()
  const worker = new Worker(new URL('./scoring-worker.ts', import.meta.url), { workerData: job })
  const abort = (): void => { void worker.terminate() }
  signal.addEventListener('abort', abort, { once: true })
  try {
    return await new Promise((resolve, reject) => {
      signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      worker.once('message', (m: ScoringReply) => { resolve(m) })
      worker.once('error', reject)
      worker.once('exit', (code) => { reject(new Error(`the scoring worker stopped (exit ${code}) before finishing`)) })
    })
  } finally {
    signal.removeEventListener('abort', abort)
    await worker.terminate()
  }
}

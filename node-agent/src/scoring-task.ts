import { totalmem } from 'node:os'
import type { ScoreResult, ScoringTask } from '@barnraise/protocol'
import { AGENT_SCORING_MAX_FLOPS, SCORING_MEMORY_SHARE, TYPESCRIPT_MAX_PARAMS, callWorker, countParams, decodeShard, scoringTaskBytes, scoringTaskFlops } from '@barnraise/trainer'
import type { BlobCache } from './blob-cache.ts'
import type { ScoringJob, ScoringReply } from './scoring-worker.ts'

/**
 * Scores another node's report (rounds/node-scoring.ts on the coordinator): the held-out loss
 * of the base weights, of base − Δ and of base + Δ on the task's windows, with the TypeScript
 * trainer's forward pass whatever executor trains here (every scorer runs the same arithmetic,
 * so honest scorers agree), on a worker thread. A task whose windows, weights or report do not
 * fit its model is answered with no losses.
 */
export async function scoreReport (cache: BlobCache, task: ScoringTask, signal: AbortSignal, memoryBytes = totalmem(), maxMemoryBytes?: number): Promise<ScoreResult | { malformed: string }> {
  const refusal = scoringRefusal(task, memoryBytes, maxMemoryBytes)
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

/** Runs a scoring job on a worker thread: a large model's three passes take minutes, and the agent must go on answering. */
async function inWorker (job: ScoringJob, signal: AbortSignal): Promise<ScoringReply> {
  return await callWorker<ScoringReply>(new URL('./scoring-worker.ts', import.meta.url), { what: 'the scoring worker', workerData: job, signal })
}

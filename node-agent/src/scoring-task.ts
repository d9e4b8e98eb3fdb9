import { decodePseudoGradient } from '@barnraise/protocol'
import type { ScoreResult, ScoringTask } from '@barnraise/protocol'
import { createParamSet, decodeShard, evaluateLoss, paramSetFromSafetensors } from '@barnraise/trainer'
import type { BlobCache } from './blob-cache.ts'

/**
 * Scores another node's report (rounds/node-scoring.ts on the coordinator): the held-out loss
 * of the base weights, of base − Δ and of base + Δ on the task's windows, with the TypeScript
 * trainer's forward pass whatever executor trains here (every scorer runs the same arithmetic,
 * so honest scorers agree). A task whose windows do not fit its model is answered with no losses.
 */
export async function scoreReport (cache: BlobCache, task: ScoringTask, signal: AbortSignal): Promise<ScoreResult | { malformed: string }> {
  const window = task.seqLen + 1
  const tokens = decodeShard(await cache.get(task.windows, signal)).tokens
  if (tokens.length !== task.batchSize * window) return { malformed: `${tokens.length} token ids for ${task.batchSize} windows of ${window}` }
  const ids = Int32Array.from(tokens)
  if (ids.some((t) => t >= task.modelConfig.vocab_size)) return { malformed: 'a token id is past the vocabulary' }
  const base = paramSetFromSafetensors(task.modelConfig, await cache.get(task.baseCheckpoint, signal))
  const delta = decodePseudoGradient(task.codec, await cache.get(task.report, signal), base.flat.length)
  const loss = (flat: Float32Array): number | null => {
    const value = evaluateLoss(createParamSet(task.modelConfig, flat), ids, task.batchSize, task.seqLen)
    return Number.isFinite(value) ? value : null
  }
  return {
    taskId: task.taskId,
    base: loss(base.flat),
    after: loss(base.flat.map((x, i) => x - delta[i]!)),
    reversed: loss(base.flat.map((x, i) => x + delta[i]!))
  }
}

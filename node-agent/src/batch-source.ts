import type { TokenRange } from '@barnraise/protocol'
import type { BatchSource } from './executors/executor.ts'

/**
 * Lays a unit's token ranges out as consecutive, non-overlapping windows of seqLen + 1
 * tokens (a window never crosses a range, so never a shard boundary); inner step s reads
 * windows s·B … s·B + B − 1, wrapping if the unit is short.
 */
export function createBatchSource (ranges: TokenRange[], shardTokens: Map<string, ArrayLike<number>>, batchSize: number, seqLen: number): BatchSource {
  const window = seqLen + 1
  // One entry a range, not a window: a unit's ranges are the coordinator's to choose, and a
  // list of every window could be hundreds of millions of objects.
  const spans: Array<{ tokens: ArrayLike<number>, start: number, firstWindow: number }> = []
  let total = 0
  for (const r of ranges) {
    const tokens = shardTokens.get(r.shard)
    if (tokens === undefined) throw new Error(`shard ${r.shard} was not fetched`)
    if (r.end > tokens.length) throw new Error(`range ${r.start}-${r.end} is past the end of shard ${r.shard} (${tokens.length} tokens)`)
    const windows = Math.max(0, Math.floor((r.end - r.start) / window))
    if (windows === 0) continue
    spans.push({ tokens, start: r.start, firstWindow: total })
    total += windows
  }
  if (total === 0) throw new Error(`the work unit holds no full window of ${window} tokens`)
  /** The range holding window `k` (the last whose first window is at most k). */
  const spanOf = (k: number): { tokens: ArrayLike<number>, start: number, firstWindow: number } => {
    let lo = 0
    let hi = spans.length - 1
    while (lo < hi) { const mid = (lo + hi + 1) >>> 1; if (spans[mid]!.firstWindow <= k) lo = mid; else hi = mid - 1 }
    return spans[lo]!
  }
  return (step) => {
    const out = new Int32Array(batchSize * window)
    for (let b = 0; b < batchSize; b++) {
      const k = (step * batchSize + b) % total
      const span = spanOf(k)
      const start = span.start + (k - span.firstWindow) * window
      for (let i = 0; i < window; i++) out[b * window + i] = span.tokens[start + i]!
    }
    return out
  }
}

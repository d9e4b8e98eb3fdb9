import type { TokenRange } from '@barnraise/protocol'
import type { BatchSource } from './executors/executor.ts'

/**
 * Lays a unit's token ranges out as consecutive, non-overlapping windows of seqLen + 1
 * tokens (a window never crosses a range, so never a shard boundary); inner step s reads
 * windows s·B … s·B + B − 1, wrapping if the unit is short.
 */
export function createBatchSource (ranges: TokenRange[], shardTokens: Map<string, ArrayLike<number>>, batchSize: number, seqLen: number): BatchSource {
  const window = seqLen + 1
  const starts: Array<{ tokens: ArrayLike<number>, start: number }> = []
  for (const r of ranges) {
    const tokens = shardTokens.get(r.shard)
    if (tokens === undefined) throw new Error(`shard ${r.shard} was not fetched`)
    if (r.end > tokens.length) throw new Error(`range ${r.start}-${r.end} is past the end of shard ${r.shard} (${tokens.length} tokens)`)
    for (let s = r.start; s + window <= r.end; s += window) starts.push({ tokens, start: s })
  }
  if (starts.length === 0) throw new Error(`the work unit holds no full window of ${window} tokens`)
  return (step) => {
    const out = new Int32Array(batchSize * window)
    for (let b = 0; b < batchSize; b++) {
      const w = starts[(step * batchSize + b) % starts.length]!
      for (let i = 0; i < window; i++) out[b * window + i] = w.tokens[w.start + i]!
    }
    return out
  }
}

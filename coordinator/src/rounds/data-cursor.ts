import type { TokenRange } from '@barnraise/protocol'
import type { DataCursor } from '../db/schema.ts'
import type { ShardInfo } from '../runs/runs.ts'

/**
 * Takes the next `count` tokens of a run's train shards, in order, starting at `cursor`,
 * wrapping into the next epoch at the end. Consecutive calls never hand out the same tokens
 * within an epoch. A range never crosses a shard boundary, so a unit may get several.
 * Ranges shorter than `minRange` (a shard's tail too short for one training window) are skipped.
 */
export function takeRanges (cursor: DataCursor, shards: ShardInfo[], count: number, minRange: number): { ranges: TokenRange[], cursor: DataCursor } {
  if (shards.length === 0) throw new Error('run has no train shards')
  if (!shards.some((s) => s.tokens >= minRange)) throw new Error(`no shard holds ${minRange} tokens (one training window)`)
  let { epoch, shard, offset } = cursor
  const ranges: TokenRange[] = []
  let remaining = count
  while (remaining > 0) {
    if (shard >= shards.length) { shard = 0; offset = 0; epoch++ }
    const info = shards[shard]!
    const available = info.tokens - offset
    if (available < minRange) { shard++; offset = 0; continue }
    // Leave no tail too short to train on: take it with this range instead.
    let take = Math.min(remaining, available)
    if (available - take < minRange) take = available
    ranges.push({ shard: info.sha256, start: offset, end: offset + take, ...(info.url !== undefined ? { url: info.url } : {}) })
    remaining -= take
    offset += take
    if (offset >= info.tokens) { shard++; offset = 0 }
  }
  return { ranges, cursor: { epoch, shard, offset } }
}

/** Total tokens in a list of ranges. */
export function rangeTokens (ranges: TokenRange[]): number {
  return ranges.reduce((n, r) => n + (r.end - r.start), 0)
}

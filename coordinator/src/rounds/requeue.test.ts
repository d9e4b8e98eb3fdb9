import { test } from 'vitest'
import assert from 'node:assert/strict'
import type { TokenRange } from '@barnraise/protocol'
import { pickFromPool, requeuedPart, unitTokenBudget } from './requeue.ts'
import { rangeTokens, takeRanges } from './data-cursor.ts'
import type { PoolUnit } from './requeue.ts'

const shard = (n: number): string => String(n).repeat(64)
const tokens = (ranges: TokenRange[]): number => ranges.reduce((s, r) => s + r.end - r.start, 0)

test('a node takes the pool unit of its own size first, else the oldest', () => {
  const pool: PoolUnit[] = [{ ranges: [], steps: 80, handed: 0 }, { ranges: [], steps: 20, handed: 0 }, { ranges: [], steps: 80, handed: 60 }]
  assert.equal(pickFromPool(pool, 20), 1)
  assert.equal(pickFromPool(pool, 80), 0)
  assert.equal(pickFromPool(pool, 5), 0)
  assert.equal(pickFromPool([], 5), -1)
})

test('a pool unit no larger than its node goes out whole, its ranges as they were', () => {
  const ranges = [{ shard: shard(1), start: 0, end: 1000 }]
  assert.deepEqual(requeuedPart({ ranges, steps: 20, handed: 0 }, 20, 33), { ranges, steps: 20, handed: 20 })
  assert.deepEqual(requeuedPart({ ranges, steps: 20, handed: 0 }, 80, 33), { ranges, steps: 20, handed: 20 })
})

test('a unit larger than its next node is cut to that node\'s size, part after part, whole windows, every window once', () => {
  // A fast node's 120,000-step unit (before units were capped) and a node sized 30,000: four parts.
  const window = 33
  const ranges: TokenRange[] = [
    { shard: shard(1), start: 0, end: 7_000_000 },
    // A range that does not end on a window: its tail is no window of the unit's.
    { shard: shard(2), start: 100, end: 100 + 8_840_000 + 20, url: 'https://example.test/2' }
  ]
  const windows = Math.floor(7_000_000 / window) + Math.floor(8_840_020 / window)
  let unit: PoolUnit = { ranges, steps: 120_000, handed: 0 }
  const parts: TokenRange[][] = []
  while (unit.handed < unit.steps) {
    const part = requeuedPart(unit, 30_000, window)
    assert.equal(part.steps, 30_000)
    assert.ok(part.steps <= 100_000)
    for (const r of part.ranges) {
      const of = ranges.find((o) => o.shard === r.shard)!
      assert.equal((r.start - of.start) % window, 0, 'a part starts on one of the unit\'s windows')
      assert.equal((r.end - r.start) % window, 0, 'whole windows')
      assert.ok(r.start >= of.start && r.end <= of.end)
      assert.equal(r.url, of.url)
    }
    // About a step's share: 30,000 steps of 4 windows each, give or take the windows the unit lacks.
    assert.ok(Math.abs(tokens(part.ranges) / window - windows / 4) <= 1)
    parts.push(part.ranges)
    unit = { ...unit, handed: part.handed }
  }
  assert.equal(parts.length, 4)
  assert.equal(parts.reduce((n, p) => n + tokens(p), 0), windows * window, 'together the parts hold every window once')
  // Consecutive parts meet where the one before ended.
  const flat = parts.flat()
  for (let i = 1; i < flat.length; i++) {
    if (flat[i]!.shard === flat[i - 1]!.shard) assert.equal(flat[i]!.start, flat[i - 1]!.end)
  }
})

test('the last part is what is left; a unit with fewer windows than steps still gives each part one', () => {
  const ranges = [{ shard: shard(3), start: 0, end: 10 * 9 }]
  const first = requeuedPart({ ranges, steps: 100, handed: 0 }, 70, 9)
  assert.deepEqual(first, { ranges: [{ shard: shard(3), start: 0, end: 63 }], steps: 70, handed: 70 })
  const rest = requeuedPart({ ranges, steps: 100, handed: 70 }, 70, 9)
  assert.deepEqual(rest, { ranges: [{ shard: shard(3), start: 63, end: 90 }], steps: 30, handed: 100 })
  const tiny = requeuedPart({ ranges: [{ shard: shard(4), start: 0, end: 18 }], steps: 10, handed: 9 }, 1, 9)
  assert.equal(tokens(tiny.ranges), 9)
})

test('a part cut from a unit that crossed a shard boundary is credited its steps\' windows, not one window fewer', () => {
  const batch = 8
  const seqLen = 128
  const window = seqLen + 1
  const shards = [{ sha256: 'a'.repeat(64), tokens: 1_000_000 }, { sha256: 'b'.repeat(64), tokens: 1_000_000 }]
  // 20 steps taken 10,000 tokens before shard a ends: a's tail and b's head, one window short in whole windows.
  const { ranges } = takeRanges({ epoch: 0, shard: 0, offset: 990_000 }, shards, 20 * batch * window, window)
  let unit: PoolUnit = { ranges, steps: 20, handed: 0 }
  let short = 0
  while (unit.handed < unit.steps) {
    const part = requeuedPart(unit, 5, window)
    const budget = unitTokenBudget(rangeTokens(part.ranges), part.steps, batch, window)
    // What an honest agent claims for the part (it wraps to train every step): within the budget,
    // where the part's ranges alone (the old bound) fall short once.
    assert.ok(part.steps * batch * seqLen <= budget)
    if (rangeTokens(part.ranges) < part.steps * batch * seqLen) short++
    unit = { ...unit, handed: part.handed }
  }
  assert.equal(short, 1, 'one part is a window short, and it is still credited in full')
})

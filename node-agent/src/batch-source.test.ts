import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createBatchSource } from './batch-source.ts'

test('windows are consecutive, disjoint, within ranges, and never cross a shard', () => {
  const a = Uint8Array.from({ length: 100 }, (_, i) => i)
  const b = Uint8Array.from({ length: 50 }, (_, i) => 200 + i)
  const shards = new Map<string, ArrayLike<number>>([['a', a], ['b', b]])
  const source = createBatchSource([{ shard: 'a', start: 10, end: 30 }, { shard: 'b', start: 0, end: 12 }], shards, 2, 4)
  assert.deepEqual([...source(0)], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
  assert.deepEqual([...source(1)], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29])
  assert.deepEqual([...source(2)], [200, 201, 202, 203, 204, 205, 206, 207, 208, 209], 'range b has two windows; its 10-11 tail is too short for a third')
  assert.deepEqual([...source(3)], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19], 'wraps around')
})

test('a range past the end of its shard is refused', () => {
  assert.throws(() => createBatchSource([{ shard: 'a', start: 0, end: 500 }], new Map([['a', new Uint8Array(100)]]), 1, 4), /past the end/)
})

test('a unit naming the same big range a thousand times over costs one entry a range, not one a window', () => {
  // 1024 ranges of a 1 Mi-token shard with seqLen 1: 537 M windows, which a list of windows could not hold.
  const tokens = Int32Array.from({ length: 1 << 20 }, (_, i) => i)
  const ranges = Array.from({ length: 1024 }, () => ({ shard: 's', start: 0, end: 1 << 20 }))
  const source = createBatchSource(ranges, new Map([['s', tokens]]), 2, 1)
  assert.deepEqual([...source(0)], [0, 1, 2, 3])
  // Window 2^19 is the second range's first: it starts over at token 0.
  assert.deepEqual([...source((1 << 19) / 2)], [0, 1, 2, 3])
  assert.deepEqual([...source((1 << 19) / 2 - 1)], [(1 << 20) - 4, (1 << 20) - 3, (1 << 20) - 2, (1 << 20) - 1])
})

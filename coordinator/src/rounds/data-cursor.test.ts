import { test } from 'vitest'
import assert from 'node:assert/strict'
import { takeRanges, rangeTokens } from './data-cursor.ts'

const shards = [{ sha256: 'a'.repeat(64), tokens: 1000 }, { sha256: 'b'.repeat(64), tokens: 500 }]

test('consecutive units get disjoint tokens within an epoch, then wrap', () => {
  let cursor = { epoch: 0, shard: 0, offset: 0 }
  const seen = new Set<string>()
  for (let i = 0; i < 5; i++) {
    const taken = takeRanges(cursor, shards, 300, 10)
    cursor = taken.cursor
    assert.equal(rangeTokens(taken.ranges), 300)
    for (const r of taken.ranges) {
      for (let t = r.start; t < r.end; t++) {
        const key = `${r.shard}:${t}`
        assert.ok(!seen.has(key), `token ${key} handed out twice in epoch 0`)
        seen.add(key)
      }
    }
  }
  assert.equal(seen.size, 1500, 'the whole epoch was covered exactly once')
  assert.deepEqual(cursor, { epoch: 0, shard: 2, offset: 0 })
  const next = takeRanges(cursor, shards, 100, 10)
  assert.equal(next.cursor.epoch, 1)
  assert.equal(next.ranges[0]!.start, 0)
})

test('a unit spanning a shard boundary gets two ranges; short tails are not left behind', () => {
  const taken = takeRanges({ epoch: 0, shard: 0, offset: 900 }, shards, 200, 10)
  assert.deepEqual(taken.ranges.map((r) => [r.shard[0], r.start, r.end]), [['a', 900, 1000], ['b', 0, 100]])
  const tail = takeRanges({ epoch: 0, shard: 0, offset: 0 }, shards, 995, 10)
  assert.deepEqual(tail.ranges, [{ shard: 'a'.repeat(64), start: 0, end: 1000 }], 'a 5-token tail is folded into the range')
})

test('refuses shards too small to train on', () => {
  assert.throws(() => takeRanges({ epoch: 0, shard: 0, offset: 0 }, [{ sha256: 'c'.repeat(64), tokens: 5 }], 10, 10), /no shard holds/)
})

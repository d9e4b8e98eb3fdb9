import { test } from 'vitest'
import assert from 'node:assert/strict'
import { presetConfig } from '@barnraise/trainer'
import { syntheticUnit } from './executors/synthetic-unit.ts'
import { UNIT_REFUSAL_CODES } from './executors/executor-error.ts'
import { createBatchSource } from './batch-source.ts'
import { usedRanges, vocabularyRefusal } from './work-loop.ts'

test('a unit whose shards use a larger vocabulary than its model is declined (ERR_BAD_INPUT), before the download and from the shards\' own headers', () => {
  const config = presetConfig('tiny')
  const unit = syntheticUnit(config, { innerSteps: 1, batchSize: 1, seqLen: 8 })
  assert.equal(vocabularyRefusal(unit), undefined)
  assert.equal(vocabularyRefusal(unit, new Map([['a'.repeat(64), 256]])), undefined)
  const claimed = vocabularyRefusal({ ...unit, shardVocabSize: 50257 })
  assert.equal(claimed?.code, 'ERR_BAD_INPUT')
  assert.match(claimed.message, /vocabulary of 50257, but the model embeds 256 token ids/)
  assert.ok(UNIT_REFUSAL_CODES.has(claimed.code))
  // A unit that understates its shards' vocabulary is caught once the shards are fetched.
  const fetched = vocabularyRefusal(unit, new Map([['a'.repeat(64), 256], ['b'.repeat(64), 1000]]))
  assert.equal(fetched?.code, 'ERR_BAD_INPUT')
  assert.match(fetched.message, /shard bbbbbbbbbbbb is tokenized with a vocabulary of 1000/)
})

test('a unit reads only the windows it trains on: ranges past them are neither fetched nor kept, and the batches are the same', () => {
  const config = presetConfig('tiny')
  // 3 steps × batch 2 = 6 windows of 9 tokens.
  const unit = syntheticUnit(config, { innerSteps: 3, batchSize: 2, seqLen: 8 })
  const a = 'a'.repeat(64)
  const b = 'b'.repeat(64)
  const c = 'c'.repeat(64)
  const ranges = [
    { shard: a, start: 0, end: 20 }, // 2 windows (2 tokens spare)
    { shard: b, start: 5, end: 10 }, // none: shorter than a window
    { shard: a, start: 100, end: 100 + 9 * 50 }, // 50 windows, 4 used
    { shard: c, start: 0, end: 9 * 1000 } // never read
  ]
  const used = usedRanges({ ...unit, ranges })
  assert.deepEqual(used.map((r) => [r.shard[0], r.start, r.end]), [['a', 0, 18], ['a', 100, 136]])
  // The batches drawn from the cut ranges are those drawn from the whole ones.
  const shard = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i % 251)
  const whole = new Map([[a, shard(10_000)], [b, shard(100)], [c, shard(10_000)]])
  const full = createBatchSource(ranges, whole, 2, 8)
  const cut = createBatchSource(used, whole, 2, 8)
  for (let step = 0; step < 3; step++) assert.deepEqual(cut(step), full(step), `step ${step}`)
})

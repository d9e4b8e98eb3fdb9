import { test } from 'vitest'
import assert from 'node:assert/strict'
import { presetConfig } from '@barnraise/trainer'
import { syntheticUnit } from './executors/synthetic-unit.ts'
import { UNIT_REFUSAL_CODES } from './executors/executor-error.ts'
import { vocabularyRefusal } from './work-loop.ts'

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

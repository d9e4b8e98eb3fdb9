import { test } from 'vitest'
import assert from 'node:assert/strict'
import { addTokenCounts, unigramBaselineLoss } from './unigram-baseline.ts'
import { validationWindowStarts } from './validation-loss.ts'

const opts = { batches: 2, batchSize: 2, seqLen: 8 }

test('a uniform training distribution over k tokens costs about log k per validation token', () => {
  const counts = new Float64Array(4)
  addTokenCounts(counts, Array.from({ length: 40_000 }, (_, i) => i % 4))
  const validation = Array.from({ length: 200 }, (_, i) => (i * 7) % 4)
  const loss = unigramBaselineLoss(counts, validation, opts)
  assert.ok(Math.abs(loss - Math.log(4)) < 1e-3, `loss ${loss}`)
})

test('only the tokens validationLoss predicts are scored: the windows, not the whole shard', () => {
  const counts = new Float64Array(2)
  addTokenCounts(counts, [...Array<number>(999).fill(0), 1])
  const validation = Array<number>(100).fill(1)
  // Put the frequent token exactly where the windows' targets are.
  for (const start of validationWindowStarts(validation.length, opts)) {
    for (let i = start + 1; i <= start + opts.seqLen; i++) validation[i] = 0
  }
  const loss = unigramBaselineLoss(counts, validation, opts)
  assert.ok(Math.abs(loss - -Math.log(1000 / 1002)) < 1e-9, `loss ${loss}`)
})

test('a token the training data never shows is smoothed, not infinite', () => {
  const counts = new Float64Array(3)
  addTokenCounts(counts, [0, 0, 0, 1])
  const loss = unigramBaselineLoss(counts, Array<number>(20).fill(2), { batches: 1, batchSize: 1, seqLen: 8 })
  assert.ok(Math.abs(loss - Math.log(7)) < 1e-9, `loss ${loss}`)
})

test('tokens outside the vocabulary and validation data shorter than a window are refused', () => {
  assert.throws(() => { addTokenCounts(new Float64Array(2), [0, 5]) }, /outside the vocabulary of 2/)
  assert.throws(() => unigramBaselineLoss(new Float64Array(2), [0, 1], opts), /one window needs 9/)
})

// Install limits bound a run's batch size and the tokens each evaluation reads, not only its
// sequence length and evaluation batches: each factor within its limit can still multiply to a
// minute of the coordinator's thread (the review's 64 × 4096 × 8192 tokens).
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { DEFAULT_INSTALL_LIMITS, overInstallLimits } from './install-limits.ts'

const run = { paramCount: 1000, keptReportBytes: 0 }

test('the default limits take 64 evaluation batches of 8 sequences of 8192 tokens, and batches up to 1024', () => {
  assert.deepEqual(overInstallLimits({ ...run, evalBatches: 64, batchSize: 8, seqLen: 8192 }, DEFAULT_INSTALL_LIMITS), [])
  assert.deepEqual(overInstallLimits({ ...run, evalBatches: 4, batchSize: 1024, seqLen: 1024 }, DEFAULT_INSTALL_LIMITS), [])
})

test('a batch size over the limit is refused naming recipe.batchSize and its flag', () => {
  const over = overInstallLimits({ ...run, evalBatches: 1, batchSize: 1025, seqLen: 8 }, DEFAULT_INSTALL_LIMITS)
  assert.deepEqual(over.map((o) => o.field), ['recipe.batchSize'])
  assert.match(over[0]!.message, /batch size 1025 is over this coordinator's limit of 1024 sequences \(--max-batch-size\)/)
})

test('an evaluation reading more tokens than the limit is refused, naming the three fields it multiplies', () => {
  // The review's spec: inside every other limit (seqLen 8192, evalBatches 64), 2.1 billion tokens an evaluation.
  const over = overInstallLimits({ ...run, evalBatches: 64, batchSize: 4096, seqLen: 8192 }, DEFAULT_INSTALL_LIMITS)
  assert.deepEqual(over.map((o) => o.field), ['recipe.batchSize', 'evalBatches'])
  assert.match(over[1]!.message, /each evaluation would read 2\.15B tokens \(evalBatches 64 × recipe\.batchSize 4096 × recipe\.seqLen 8192\); this coordinator allows 4\.2M \(--max-eval-tokens\)/)
  // Within the batch-size limit, still too much to evaluate.
  assert.deepEqual(overInstallLimits({ ...run, evalBatches: 64, batchSize: 16, seqLen: 8192 }, DEFAULT_INSTALL_LIMITS).map((o) => o.field), ['evalBatches'])
  assert.deepEqual(overInstallLimits({ ...run, evalBatches: 64, batchSize: 16, seqLen: 8192 }, { ...DEFAULT_INSTALL_LIMITS, maxEvalTokens: 8_388_608 }), [], 'an operator may allow more')
})

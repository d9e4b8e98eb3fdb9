import { test } from 'vitest'
import assert from 'node:assert/strict'
import { countParams, presetConfig } from '@barnraise/trainer'
import type { StoredRunSpec } from './runs.ts'
import { INLINE_EVAL_FLOPS, INLINE_SCORE_FLOPS, NODE_SCORING_MAX_FLOPS, SCORING_MAX_PARAMS, errorFeedbackDecayOf, evaluationFlops, plannedRounds, runIsDone, scorer, scoringFlops, storedLoss } from './run-plan.ts'

function spec (goal: { rounds?: number, tokenTarget?: number }): StoredRunSpec {
  return { ...goal, minNodes: 2, recipe: { innerSteps: 10, batchSize: 4, seqLen: 32 } } as unknown as StoredRunSpec
}

test('a run is done at its round count or its token target, whichever it names', () => {
  assert.equal(runIsDone(spec({ rounds: 3 }), { rounds: 2, tokens: 1e9 }), false)
  assert.equal(runIsDone(spec({ rounds: 3 }), { rounds: 3, tokens: 0 }), true)
  assert.equal(runIsDone(spec({ tokenTarget: 5000 }), { rounds: 99, tokens: 4999 }), false)
  assert.equal(runIsDone(spec({ tokenTarget: 5000 }), { rounds: 1, tokens: 5000 }), true)
})

test('the schedule spans the run\'s rounds, or its token target at minNodes units per round', () => {
  assert.equal(plannedRounds(spec({ rounds: 7 })), 7)
  // 2 nodes × 10 steps × 4 × 32 = 2560 tokens a round.
  assert.equal(plannedRounds(spec({ tokenTarget: 2560 * 3 + 1 })), 4)
  assert.equal(plannedRounds(spec({ tokenTarget: 1 })), 1)
})

test('a loss that is not a finite number is stored as null', () => {
  assert.equal(storedLoss(2.5), 2.5)
  assert.equal(storedLoss(Number.NaN), null)
  assert.equal(storedLoss(Number.POSITIVE_INFINITY), null)
})

test('a run stored before the error-feedback decay existed carries all of each residual; a newer one its own share', () => {
  assert.equal(errorFeedbackDecayOf(spec({ rounds: 3 })), 1)
  const decayed = { ...spec({ rounds: 3 }), recipe: { innerSteps: 10, batchSize: 4, seqLen: 32, errorFeedbackDecay: 0.7 } } as unknown as StoredRunSpec
  assert.equal(errorFeedbackDecayOf(decayed), 0.7)
})

test('forward-pass work goes where it costs what that place can spend: scoring and validation by FLOPs, not parameters alone', () => {
  const sized = (paramCount: number, seqLen: number, batchSize = 4, evalBatches = 4): StoredRunSpec =>
    ({ paramCount, evalBatches, minNodes: 1, recipe: { innerSteps: 10, batchSize, seqLen } } as unknown as StoredRunSpec)
  // A preset, its positions stretched where the windows are longer (a custom config may do that).
  const withModel = (preset: string, seqLen: number, batchSize = 4): StoredRunSpec => {
    const config = presetConfig(preset)
    const modelConfig = { ...config, max_position_embeddings: Math.max(seqLen, config.max_position_embeddings) }
    return { ...sized(countParams(modelConfig), seqLen, batchSize), modelConfig } as unknown as StoredRunSpec
  }
  const score = (spec: StoredRunSpec): string => scorer(spec, SCORING_MAX_PARAMS, INLINE_SCORE_FLOPS)
  // The demo's small model at seq 64: 8 windows × 64 tokens × 3 passes × (2 × 198,208 parameters + attention's 4 · 4 layers · 4 heads · 16 · 64).
  assert.equal(scoringFlops(withModel('small', 64)), 8 * 64 * 3 * (2 * 198_208 + 4 * 4 * 4 * 16 * 64))
  assert.equal(score(withModel('small', 64)), 'coordinator')
  // Under --score-max-params, but 2,048-token windows: seconds of event loop a report. Nodes score it.
  assert.equal(score(withModel('tiny', 2048)), 'nodes')
  assert.equal(score(withModel('small', 256)), 'nodes', 'its attention takes it past the event loop\'s budget')
  assert.equal(score(withModel('medium', 256, 8)), 'nodes')
  // A 125M model at 2,048 tokens: hours for any TypeScript scorer, so nobody scores it.
  assert.equal(score(withModel('125m', 2048, 8)), 'none')
  assert.ok(scoringFlops(withModel('125m', 2048, 8)) > NODE_SCORING_MAX_FLOPS)
  // What agents refuse is asked of nobody: a model past their 50M parameters, T² attention past
  // 1 TFLOP, or a task needing more than half of an 8 GiB machine (small's 8,192-token windows,
  // two of them: 0.4 TFLOP but 8 GiB of attention).
  assert.equal(score(withModel('large', 64)), 'none')
  assert.equal(score(withModel('small', 8192)), 'none')
  assert.ok(scoringFlops(withModel('small', 8192, 1)) <= NODE_SCORING_MAX_FLOPS)
  assert.equal(score(withModel('small', 8192, 1)), 'none')
  // --score-max-params 0: nodes score every screened report they can.
  assert.equal(scorer(withModel('small', 64), 0, INLINE_SCORE_FLOPS), 'nodes')
  // Validation: the demo's windows on the event loop, a 125m run's on the worker thread.
  assert.ok(evaluationFlops(withModel('small', 64)) <= INLINE_EVAL_FLOPS)
  const c125 = presetConfig('125m')
  const perToken = 2 * countParams(c125) + 4 * c125.num_hidden_layers * c125.num_attention_heads * c125.head_dim * 2048
  assert.equal(evaluationFlops(withModel('125m', 2048, 8)), 4 * 8 * 2048 * perToken, 'four windows of eight rows, attention counted')
  assert.ok(evaluationFlops(withModel('125m', 2048, 8)) > INLINE_EVAL_FLOPS)
  // Long windows of a small model: the weights alone fit the budget, their attention does not.
  const long = withModel('tiny', 1024, 1)
  assert.ok(2 * long.paramCount * 4 * 1024 <= INLINE_EVAL_FLOPS && evaluationFlops(long) > INLINE_EVAL_FLOPS, 'tiny at 1,024 tokens: 0.9 GFLOP of weights, 3 GFLOP with attention')
})

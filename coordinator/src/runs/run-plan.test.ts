import { test } from 'vitest'
import assert from 'node:assert/strict'
import { countParams, presetConfig } from '@barnraise/trainer'
import type { StoredRunSpec } from './runs.ts'
import { INLINE_EVAL_FLOPS, NODE_SCORING_MAX_FLOPS, SCORING_MAX_PARAMS, errorFeedbackDecayOf, evaluationFlops, plannedRounds, runIsDone, scorer, scoringFlops, storedLoss } from './run-plan.ts'

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
  // The demo's small model at seq 64: 8 windows × 64 tokens × 3 passes × 2 × 198,208 parameters.
  assert.equal(scoringFlops(sized(198_208, 64)), 8 * 64 * 3 * 2 * 198_208)
  assert.equal(scorer(sized(198_208, 64), SCORING_MAX_PARAMS, INLINE_EVAL_FLOPS), 'coordinator')
  // Under --score-max-params, but 8,192-token windows: minutes of event loop a report. Nodes score it.
  assert.equal(scorer(sized(1_000_000, 8192), SCORING_MAX_PARAMS, INLINE_EVAL_FLOPS), 'nodes')
  assert.equal(scorer(sized(23_000_000, 256, 8), SCORING_MAX_PARAMS, INLINE_EVAL_FLOPS), 'nodes')
  // A 125M model at 2,048 tokens: hours for any TypeScript scorer, so nobody scores it.
  assert.equal(scorer(sized(124_278_528, 2048, 8), SCORING_MAX_PARAMS, INLINE_EVAL_FLOPS), 'none')
  assert.ok(scoringFlops(sized(124_278_528, 2048, 8)) > NODE_SCORING_MAX_FLOPS)
  // What agents refuse is asked of nobody: a model past their 50M parameters, or T² attention past 1 TFLOP.
  const withModel = (preset: string, seqLen: number): StoredRunSpec => ({ ...sized(countParams(presetConfig(preset)), seqLen), modelConfig: presetConfig(preset) } as unknown as StoredRunSpec)
  assert.equal(scorer(withModel('large', 64), SCORING_MAX_PARAMS, INLINE_EVAL_FLOPS), 'none')
  assert.equal(scorer(withModel('small', 8192), SCORING_MAX_PARAMS, INLINE_EVAL_FLOPS), 'none')
  assert.equal(scorer(withModel('small', 64), SCORING_MAX_PARAMS, INLINE_EVAL_FLOPS), 'coordinator')
  assert.equal(scorer(withModel('small', 256), SCORING_MAX_PARAMS, INLINE_EVAL_FLOPS), 'nodes', 'its attention takes it past the event loop\'s budget')
  assert.ok(scoringFlops(withModel('small', 8192)) > scoringFlops(sized(countParams(presetConfig('small')), 8192)), 'attention is counted')
  // --score-max-params 0: nodes score every screened report they can.
  assert.equal(scorer(sized(198_208, 64), 0, INLINE_EVAL_FLOPS), 'nodes')
  // Validation: the demo's windows on the event loop, a 125m run's on the worker thread.
  assert.ok(evaluationFlops(sized(198_208, 64)) <= INLINE_EVAL_FLOPS)
  assert.equal(evaluationFlops(sized(124_278_528, 2048, 8)), 2 * 124_278_528 * 4 * 8 * 2048)
  assert.ok(evaluationFlops(sized(124_278_528, 2048, 8)) > INLINE_EVAL_FLOPS)
})

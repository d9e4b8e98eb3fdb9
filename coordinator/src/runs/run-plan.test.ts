import { test } from 'vitest'
import assert from 'node:assert/strict'
import type { StoredRunSpec } from './runs.ts'
import { errorFeedbackDecayOf, plannedRounds, runIsDone, storedLoss } from './run-plan.ts'

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

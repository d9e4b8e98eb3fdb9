import { test } from 'vitest'
import assert from 'node:assert/strict'
import { MAX_STEP_FACTOR, stepsByTiming } from './unit-sizing.ts'

const compute = (secondsPerStep: number) => ({ secondsPerStep, overheadSeconds: 0 })

test('with links alike, a node twice as fast as the median trains twice the steps; an unmeasured node trains the run\'s own', () => {
  assert.deepEqual(stepsByTiming(20, [compute(1), compute(0.5), compute(2), undefined]), [20, 40, 10, 20])
  assert.deepEqual(stepsByTiming(20, [undefined, undefined]), [20, 20])
})

test('a slow link costs steps: each unit is sized to come back when the median node\'s does', () => {
  // Same GPU; one node spends 10 s a round on transfers the others spend 2 s on.
  // Median turnaround at 20 steps of 1 s: 2 + 20 = 22 s; the slow link leaves 12 s of compute.
  assert.deepEqual(stepsByTiming(20, [{ secondsPerStep: 1, overheadSeconds: 2 }, { secondsPerStep: 1, overheadSeconds: 2 }, { secondsPerStep: 1, overheadSeconds: 10 }]), [20, 20, 12])
  // Transfers alone past the round: the least a unit can be.
  assert.deepEqual(stepsByTiming(20, [compute(1), compute(1), { secondsPerStep: 1, overheadSeconds: 100 }]), [20, 20, 20 / MAX_STEP_FACTOR])
})

test('claims move a unit only so far: at most 4× the run\'s steps, at least a quarter and never zero; nonsense timings are ignored', () => {
  assert.deepEqual(stepsByTiming(20, [compute(1000), compute(1), compute(0.0001)]), [20 / MAX_STEP_FACTOR, 20, 20 * MAX_STEP_FACTOR])
  assert.deepEqual(stepsByTiming(2, [compute(100), compute(1)]), [1, 8])
  assert.deepEqual(stepsByTiming(20, [compute(Number.NaN), compute(0), { secondsPerStep: 1, overheadSeconds: -1 }, compute(1)]), [20, 20, 20, 20])
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { MAX_STEP_FACTOR, stepsByThroughput } from './unit-sizing.ts'

test('a node twice as fast as the median trains twice the steps; an unmeasured node trains the run\'s own', () => {
  assert.deepEqual(stepsByThroughput(20, [1000, 2000, 500, undefined]), [20, 40, 10, 20])
  // No one measured yet: everyone gets the run's steps.
  assert.deepEqual(stepsByThroughput(20, [undefined, undefined]), [20, 20])
})

test('claims move a unit only so far: at most 4× the run\'s steps, at least a quarter and never zero', () => {
  assert.deepEqual(stepsByThroughput(20, [1, 1000, 1_000_000]), [20 / MAX_STEP_FACTOR, 20, 20 * MAX_STEP_FACTOR])
  assert.deepEqual(stepsByThroughput(2, [1, 100]), [1, 4])
  assert.deepEqual(stepsByThroughput(20, [Number.NaN, 0, -5, 100]), [20, 20, 20, 20])
})

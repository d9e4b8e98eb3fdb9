import { test } from 'vitest'
import assert from 'node:assert/strict'
import { MAX_LOSS_CURVE_POINTS, sampleLossCurve } from './loss-curve.ts'

test('a long loss curve is sampled to evenly spaced steps, first and last kept; a short one is untouched', () => {
  const steps = Array.from({ length: 100_000 }, (_, i) => 10 - i / 20_000)
  const sampled = sampleLossCurve(steps)
  assert.equal(sampled.length, MAX_LOSS_CURVE_POINTS)
  assert.equal(sampled[0], steps[0])
  assert.equal(sampled.at(-1), steps.at(-1))
  for (let k = 1; k < sampled.length; k++) assert.ok(sampled[k]! < sampled[k - 1]!, 'in step order, no step twice')
  assert.ok(JSON.stringify(sampled).length < 64 * 1024, 'fits a report header with room to spare')
  assert.deepEqual(sampleLossCurve([3, 2, 1]), [3, 2, 1])
  assert.deepEqual(sampleLossCurve([5, 4, 3, 2, 1], 3), [5, 3, 1])
  assert.deepEqual(sampleLossCurve([5, 4, 3], 1), [3])
  assert.deepEqual(sampleLossCurve([]), [])
})

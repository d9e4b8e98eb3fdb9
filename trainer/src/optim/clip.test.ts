import { test } from 'vitest'
import assert from 'node:assert/strict'
import { clipGradNorm } from './clip.ts'

test('clipGradNorm scales a large gradient to maxNorm and returns the pre-clip norm', () => {
  const g = new Float32Array([3, 4])
  assert.equal(clipGradNorm(g, 1), 5)
  assert.ok(Math.abs(Math.hypot(g[0], g[1]) - 1) < 1e-6)
  assert.ok(Math.abs(g[0] / g[1] - 0.75) < 1e-6)
})

test('clipGradNorm leaves a small gradient alone', () => {
  const g = new Float32Array([0.3, 0.4])
  assert.ok(Math.abs(clipGradNorm(g, 1) - 0.5) < 1e-7)
  assert.deepEqual(g, new Float32Array([0.3, 0.4]))
})

test('clipGradNorm returns a non-finite norm without touching the gradient', () => {
  const g = new Float32Array([1, Number.NaN])
  assert.ok(Number.isNaN(clipGradNorm(g, 1)))
  assert.equal(g[0], 1)
  assert.equal(clipGradNorm(new Float32Array([Infinity]), 1), Infinity)
  assert.throws(() => clipGradNorm(g, 0), RangeError)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { learningRateAt } from './schedule.ts'

const opts = { peakLr: 1e-3, warmupSteps: 10, totalSteps: 110, minLr: 1e-4 }
const close = (a: number, b: number): void => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`)

test('warmup rises linearly and reaches the peak on its last step', () => {
  close(learningRateAt(0, opts), 1e-4)
  close(learningRateAt(4, opts), 5e-4)
  close(learningRateAt(9, opts), 1e-3)
})

test('cosine decays from the peak to minLr, then stays there', () => {
  close(learningRateAt(10, opts), 1e-3)
  close(learningRateAt(60, opts), 1e-4 + 0.5 * 9e-4)
  assert.ok(learningRateAt(109, opts) > 1e-4)
  close(learningRateAt(110, opts), 1e-4)
  close(learningRateAt(10_000, opts), 1e-4)
  for (let s = 10; s < 110; s++) assert.ok(learningRateAt(s + 1, opts) <= learningRateAt(s, opts))
})

test('no warmup and a default minLr of 0 work; bad options throw', () => {
  close(learningRateAt(0, { peakLr: 1, warmupSteps: 0, totalSteps: 2 }), 1)
  close(learningRateAt(1, { peakLr: 1, warmupSteps: 0, totalSteps: 2 }), 0.5)
  close(learningRateAt(2, { peakLr: 1, warmupSteps: 0, totalSteps: 2 }), 0)
  assert.throws(() => learningRateAt(-1, opts), RangeError)
  assert.throws(() => learningRateAt(0, { ...opts, minLr: 1 }), RangeError)
})

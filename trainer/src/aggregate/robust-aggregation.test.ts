import { test } from 'vitest'
import assert from 'node:assert/strict'
import { aggregate, cosineSimilarity } from './robust-aggregation.ts'

const f = (...xs: number[]): Float32Array => Float32Array.from(xs)
const close = (actual: Float32Array, expected: number[], what: string): void => {
  assert.equal(actual.length, expected.length, what)
  expected.forEach((e, i) => { assert.ok(Math.abs(actual[i]! - e) < 1e-6, `${what}[${i}]: ${actual[i]} ≠ ${e}`) })
}

test('mean is token-weighted', () => {
  const { update } = aggregate([{ delta: f(1, 0), tokens: 1 }, { delta: f(4, 3), tokens: 3 }], { rule: 'mean' })
  close(update, [(1 + 12) / 4, 9 / 4], 'mean')
})

test('median is the weighted median per coordinate; one outlier cannot move it', () => {
  const reports = [{ delta: f(1, -2), tokens: 1 }, { delta: f(2, -1), tokens: 1 }, { delta: f(1000, 500), tokens: 1 }]
  close(aggregate(reports, { rule: 'median' }).update, [2, -1], 'median')
  // A report with most of the weight is the median on its own.
  close(aggregate([{ delta: f(1), tokens: 1 }, { delta: f(5), tokens: 3 }, { delta: f(9), tokens: 1 }], { rule: 'median' }).update, [5], 'weighted')
})

test('trimmed mean drops the given share of weight from each end', () => {
  // Five equal weights, trim 0.2: the lowest and highest value go, the middle three are averaged.
  const reports = [f(-100), f(1), f(2), f(3), f(100)].map((delta) => ({ delta, tokens: 2 }))
  close(aggregate(reports, { rule: 'trimmed-mean', trim: 0.2 }).update, [2], 'trim 0.2')
  // Trim 0.3 of 10 tokens = 3 from each end: the 1 keeps 1 of its 2 tokens, the 3 likewise.
  close(aggregate(reports, { rule: 'trimmed-mean', trim: 0.3 }).update, [(1 * 1 + 2 * 2 + 3 * 1) / 4], 'partial weights')
  close(aggregate(reports, { rule: 'trimmed-mean', trim: 0 }).update, [6 / 5], 'trim 0 is the mean')
  assert.throws(() => aggregate(reports, { rule: 'trimmed-mean', trim: 0.5 }), RangeError)
})

test('clipping to the median norm scales a ×100 report down to k × the median', () => {
  const reports = [{ delta: f(3, 4), tokens: 1 }, { delta: f(0, 5), tokens: 1 }, { delta: f(300, 400), tokens: 1 }]
  const { update, scales, medianNorm } = aggregate(reports, { rule: 'mean' }, { clipToMedianNorm: 2 })
  assert.equal(medianNorm, 5)
  assert.deepEqual(scales.map((s) => Number(s.toFixed(6))), [1, 1, 0.02])
  close(update, [(3 + 0 + 6) / 3, (4 + 5 + 8) / 3], 'clipped mean')
})

test('centered clipping stays near the honest reports when one is huge', () => {
  const honest = [f(1, 1), f(1.2, 0.8), f(0.8, 1.2), f(1.1, 0.9)].map((delta) => ({ delta, tokens: 1 }))
  const { update } = aggregate([...honest, { delta: f(-500, -500), tokens: 1 }], { rule: 'centered-clip' })
  assert.ok(Math.abs(update[0]! - 1) < 0.3 && Math.abs(update[1]! - 1) < 0.3, `centered clip gave ${update[0]}, ${update[1]}`)
  const plain = aggregate([...honest, { delta: f(-500, -500), tokens: 1 }], { rule: 'mean' }).update
  assert.ok(plain[0]! < -90, 'while the plain mean is dragged away')
})

test('bad input is refused, not averaged', () => {
  assert.throws(() => aggregate([], { rule: 'mean' }), RangeError)
  assert.throws(() => aggregate([{ delta: f(1), tokens: 1 }, { delta: f(1, 2), tokens: 1 }], { rule: 'mean' }), /2 values/)
  assert.throws(() => aggregate([{ delta: f(1), tokens: 0 }], { rule: 'mean' }), /positive number of tokens/)
  assert.throws(() => aggregate([{ delta: f(1), tokens: Number.NaN }], { rule: 'median' }), RangeError)
})

test('cosine similarity', () => {
  assert.equal(cosineSimilarity(f(1, 0), f(0, 1)), 0)
  assert.ok(Math.abs(cosineSimilarity(f(1, 1), f(2, 2)) - 1) < 1e-12)
  assert.ok(Math.abs(cosineSimilarity(f(1, 0), f(-3, 0)) + 1) < 1e-12)
  assert.equal(cosineSimilarity(f(0, 0), f(1, 1)), 0)
})

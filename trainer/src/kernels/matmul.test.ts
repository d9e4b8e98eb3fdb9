import { test } from 'vitest'
import assert from 'node:assert/strict'
import { matmulABt, matmulABtNaive, transpose } from './matmul.ts'

function random (n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  let s = seed
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    out[i] = s / 2 ** 32 - 0.5
  }
  return out
}

function maxAbsDiff (a: Float32Array, b: Float32Array): number {
  let d = 0
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]))
  return d
}

// Shapes with every remainder mod 4 in m and n, and k of 1.
const shapes: Array<[number, number, number]> = [[1, 1, 1], [4, 4, 4], [5, 7, 3], [8, 6, 1], [13, 9, 17], [3, 12, 8], [16, 16, 33]]

test('matmulABt matches the naive triple loop on ragged shapes', () => {
  for (const [m, n, k] of shapes) {
    const a = random(m * k, m + 1)
    const b = random(n * k, n + 7)
    const want = new Float32Array(m * n)
    matmulABtNaive(a, b, want, m, n, k)
    const got = new Float32Array(m * n).fill(Number.NaN)
    matmulABt(a, b, got, m, n, k)
    assert.ok(maxAbsDiff(got, want) < 1e-6, `[${m},${n},${k}]`)
  }
})

test('matmulABt accumulates into C when asked', () => {
  const [m, n, k] = [6, 5, 7]
  const a = random(m * k, 3)
  const b = random(n * k, 4)
  const prod = new Float32Array(m * n)
  matmulABtNaive(a, b, prod, m, n, k)
  const c = random(m * n, 5)
  const want = c.map((x, i) => x + prod[i])
  matmulABt(a, b, c, m, n, k, true)
  assert.ok(maxAbsDiff(c, want) < 1e-6)
})

test('matmulABt lower computes every entry on and below the diagonal', () => {
  for (const t of [1, 2, 5, 8, 11]) {
    const a = random(t * 3, t)
    const b = random(t * 3, t + 1)
    const want = new Float32Array(t * t)
    matmulABtNaive(a, b, want, t, t, 3)
    const got = new Float32Array(t * t).fill(Number.NaN)
    matmulABt(a, b, got, t, t, 3, false, true)
    for (let i = 0; i < t; i++) {
      for (let j = 0; j <= i; j++) assert.ok(Math.abs(got[i * t + j] - want[i * t + j]) < 1e-6, `t=${t} (${i},${j})`)
    }
  }
})

test('transpose swaps rows and columns, including past one 32-wide tile', () => {
  for (const [r, c] of [[1, 1], [3, 5], [40, 33]]) {
    const x = random(r * c, r * c)
    const y = new Float32Array(r * c)
    transpose(x, y, r, c)
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) assert.equal(y[j * r + i], x[i * c + j])
  }
})

test('kernels refuse buffers too small for the shape', () => {
  assert.throws(() => matmulABt(new Float32Array(5), new Float32Array(6), new Float32Array(4), 2, 2, 3), RangeError)
  assert.throws(() => transpose(new Float32Array(5), new Float32Array(6), 2, 3), RangeError)
})

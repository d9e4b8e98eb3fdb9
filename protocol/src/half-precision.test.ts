import { test } from 'vitest'
import assert from 'node:assert/strict'
import {
  bfloat16BitsToFloat32, decodeBfloat16Array, decodeFloat16Array, encodeBfloat16Array, encodeFloat16Array,
  float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits
} from './half-precision.ts'

test('fp16 encodes known values', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff],
    [1 / 3, 0x3555], [6.103515625e-5, 0x0400], // smallest normal
    [5.960464477539063e-8, 0x0001], // smallest subnormal
    [Infinity, 0x7c00], [-Infinity, 0xfc00], [1e6, 0x7c00], [3.14159, 0x4248]
  ]
  for (const [x, bits] of cases) assert.equal(float32ToFloat16Bits(x), bits, `fp16(${x})`)
  assert.equal(float32ToFloat16Bits(Number.NaN) & 0x7c00, 0x7c00)
  assert.notEqual(float32ToFloat16Bits(Number.NaN) & 0x3ff, 0)
})

test('fp16 rounds ties to even, including across the subnormal boundary and into overflow', () => {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to the even mantissa (1).
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00)
  // 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even).
  assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02)
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01)
  // halfway between 0 and the smallest subnormal rounds to 0; just above rounds up
  assert.equal(float32ToFloat16Bits(2 ** -25), 0x0000)
  assert.equal(float32ToFloat16Bits(2 ** -25 * 1.0001), 0x0001)
  // 1.5 * 2^-24 is a tie between subnormals 1 (odd) and 2 (even)
  assert.equal(float32ToFloat16Bits(1.5 * 2 ** -24), 0x0002)
  // the largest subnormal plus half a step carries into the smallest normal
  assert.equal(float32ToFloat16Bits((1023.5) * 2 ** -24), 0x0400)
  // 65520 is halfway between 65504 and 65536 (Inf): the even choice is Inf
  assert.equal(float32ToFloat16Bits(65519), 0x7bff)
  assert.equal(float32ToFloat16Bits(65520), 0x7c00)
})

test('fp16 decode inverts encode on every finite bit pattern', () => {
  for (let h = 0; h < 65536; h++) {
    const x = float16BitsToFloat32(h)
    if (Number.isNaN(x)) { assert.equal((h & 0x7c00), 0x7c00); continue }
    assert.equal(float32ToFloat16Bits(x), h, `pattern ${h.toString(16)}`)
  }
  assert.equal(float16BitsToFloat32(0x3c00), 1)
  assert.equal(float16BitsToFloat32(0x7bff), 65504)
  assert.equal(float16BitsToFloat32(0x0001), 2 ** -24)
  assert.equal(float16BitsToFloat32(0xfc00), -Infinity)
})

test('bf16 encodes known values with ties to even', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000], [1, 0x3f80], [-2, 0xc000], [3.140625, 0x4049], [Infinity, 0x7f80], [-Infinity, 0xff80],
    [1 + 2 ** -8, 0x3f80], // tie, even is 1
    [1 + 3 * 2 ** -8, 0x3f82], // tie, even is 1 + 2^-6
    [1 + 2 ** -8 + 2 ** -20, 0x3f81],
    [3.4028234663852886e38, 0x7f80] // float32 max rounds to Inf in bf16
  ]
  for (const [x, bits] of cases) assert.equal(float32ToBfloat16Bits(x), bits, `bf16(${x})`)
  assert.equal(float32ToBfloat16Bits(Number.NaN) & 0x7fc0, 0x7fc0)
  assert.equal(bfloat16BitsToFloat32(0x3f80), 1)
  assert.equal(bfloat16BitsToFloat32(0xc049), -3.140625)
})

test('bulk conversions agree with the scalar ones', () => {
  const src = new Float32Array(1000)
  for (let i = 0; i < src.length; i++) src[i] = Math.sin(i * 12.9898) * 10 ** ((i % 13) - 6)
  const h = new Uint16Array(src.length)
  const b = new Uint16Array(src.length)
  encodeFloat16Array(src, h)
  encodeBfloat16Array(src, b)
  const hd = new Float32Array(src.length)
  const bd = new Float32Array(src.length)
  decodeFloat16Array(h, hd)
  decodeBfloat16Array(b, bd)
  for (let i = 0; i < src.length; i++) {
    assert.equal(h[i], float32ToFloat16Bits(src[i]))
    assert.equal(b[i], float32ToBfloat16Bits(src[i]))
    assert.equal(hd[i], Math.fround(float16BitsToFloat32(h[i])))
    assert.equal(bd[i], bfloat16BitsToFloat32(b[i]))
    const x = src[i]
    if (Math.abs(x) >= 2 ** -14 && Math.abs(x) <= 65504) assert.ok(Math.abs(hd[i] - x) <= Math.abs(x) * 2 ** -11)
    assert.ok(Math.abs(bd[i] - x) <= Math.abs(x) * 2 ** -8)
  }
})

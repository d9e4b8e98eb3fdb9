import { test } from 'vitest'
import assert from 'node:assert/strict'
import {
  CODEC_NAMES, decodePseudoGradient, encodedByteLength, encodePseudoGradient,
  INT8_BLOCK, PseudoGradientError, pseudoGradientErrorBound
} from './index.ts'
import type { CodecName } from './index.ts'

/** Deterministic values spanning several magnitudes, with per-block scale changes. */
function randomValues (n: number, seed: number): Float32Array {
  let s = seed >>> 0
  const next = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 }
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    const magnitude = 10 ** (Math.floor(i / INT8_BLOCK) % 7 - 4)
    out[i] = (next() * 2 - 1) * magnitude * (next() < 0.01 ? 50 : 1)
  }
  return out
}

function assertCode (fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof PseudoGradientError && err.code === code)
}

test('every codec round-trips within its documented bound', () => {
  for (const codec of CODEC_NAMES) {
    for (const n of [0, 1, 255, 256, 257, 1000, 200_003]) {
      const x = randomValues(n, n + 7)
      const bytes = encodePseudoGradient(codec, x)
      assert.equal(bytes.byteLength, encodedByteLength(codec, n), `${codec} size`)
      const back = decodePseudoGradient(codec, bytes, n)
      const bound = pseudoGradientErrorBound(codec, x)
      for (let i = 0; i < n; i++) {
        const err = Math.abs(back[i] - x[i])
        if (err > bound[i]) assert.fail(`${codec} n=${n} element ${i}: |${x[i]} - ${back[i]}| = ${err} > ${bound[i]}`)
      }
    }
  }
})

test('payload sizes match the documented formulas', () => {
  assert.equal(encodedByteLength('fp32', 1000), 4000)
  assert.equal(encodedByteLength('fp16', 1000), 2000)
  assert.equal(encodedByteLength('int8', 1000), 1000 + 4 * 4)
  assert.equal(encodedByteLength('int8', 512), 512 + 8)
  assertCode(() => encodedByteLength('int8', -1), 'ERR_BAD_LENGTH')
  assertCode(() => encodedByteLength('int4' as CodecName, 4), 'ERR_UNKNOWN_CODEC')
})

test('int8 uses absmax/127 scales and ties to even', () => {
  const x = new Float32Array(INT8_BLOCK + 3)
  x[0] = 127; x[1] = -127; x[2] = 2.5; x[3] = 3.5; x[4] = -2.5; x[5] = 0.4
  x[INT8_BLOCK] = 1e-3
  const bytes = encodePseudoGradient('int8', x)
  const view = new DataView(bytes.buffer)
  assert.equal(view.getFloat32(0, true), 1)
  assert.deepEqual([...new Int8Array(bytes.buffer, 4, 6)], [127, -127, 2, 4, -2, 0])
  assert.equal(view.getFloat32(4 + INT8_BLOCK, true), Math.fround(1e-3 / 127))
  assert.equal(new Int8Array(bytes.buffer)[8 + INT8_BLOCK], 127)
  // an all-zero block has scale 0 and decodes to zeros
  const zeros = decodePseudoGradient('int8', encodePseudoGradient('int8', new Float32Array(300)), 300)
  assert.ok(zeros.every((v) => v === 0))
})

test('fp16 refuses magnitudes beyond 65504 at encode', () => {
  encodePseudoGradient('fp16', new Float32Array([65504, -65504]))
  assertCode(() => encodePseudoGradient('fp16', new Float32Array([1, 65505])), 'ERR_OUT_OF_RANGE')
  assertCode(() => encodePseudoGradient('fp16', new Float32Array([-1e9])), 'ERR_OUT_OF_RANGE')
})

test('NaN and Inf are refused at encode by every codec', () => {
  for (const codec of CODEC_NAMES) {
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const x = randomValues(600, 1)
      x[517] = bad
      assert.throws(() => encodePseudoGradient(codec, x), (err: unknown) =>
        err instanceof PseudoGradientError && err.code === 'ERR_NON_FINITE' && /element 517/.test(err.message), `${codec} ${bad}`)
    }
  }
})

test('non-finite or malformed payloads are refused at decode', () => {
  const fp32 = new Uint8Array(new Float32Array([1, Number.NaN, 3]).buffer)
  assertCode(() => decodePseudoGradient('fp32', fp32, 3), 'ERR_NON_FINITE')
  const fp16 = new Uint8Array(new Uint16Array([0x3c00, 0x7c00]).buffer) // 1, +Inf
  assertCode(() => decodePseudoGradient('fp16', fp16, 2), 'ERR_NON_FINITE')
  fp16.set([0x01, 0x7e], 2) // a NaN pattern
  assertCode(() => decodePseudoGradient('fp16', fp16, 2), 'ERR_NON_FINITE')

  const good = encodePseudoGradient('int8', randomValues(300, 3))
  for (const scale of [Number.NaN, Infinity, -1]) {
    const bad = good.slice()
    new DataView(bad.buffer).setFloat32(4 + INT8_BLOCK, scale, true)
    assertCode(() => decodePseudoGradient('int8', bad, 300), 'ERR_BAD_SCALE')
  }
  const huge = good.slice()
  new DataView(huge.buffer).setFloat32(0, 3e38, true) // finite scale, but q·scale overflows
  huge[4] = 100
  assertCode(() => decodePseudoGradient('int8', huge, 300), 'ERR_NON_FINITE')
  const minus128 = good.slice()
  minus128[10] = 0x80
  assertCode(() => decodePseudoGradient('int8', minus128, 300), 'ERR_BAD_VALUE')
})

test('wrong byte lengths are refused', () => {
  for (const codec of CODEC_NAMES) {
    const bytes = encodePseudoGradient(codec, randomValues(300, 5))
    assertCode(() => decodePseudoGradient(codec, bytes, 299), 'ERR_BAD_LENGTH')
    assertCode(() => decodePseudoGradient(codec, bytes, 301), 'ERR_BAD_LENGTH')
    assertCode(() => decodePseudoGradient(codec, bytes.subarray(1), 300), 'ERR_BAD_LENGTH')
    assertCode(() => decodePseudoGradient(codec, bytes, 1.5), 'ERR_BAD_LENGTH')
  }
})


test('topk keeps the 64th part of each 4,096-value chunk with the largest magnitudes, ties to the lower index', () => {
  assert.equal(encodedByteLength('topk', 4096), 8 + 132)
  assert.equal(encodedByteLength('topk', 2 * 4096 + 100), 8 + 2 * 132 + (4 + 3 + 1))
  const n = 4096 + 130
  const x = randomValues(n, 11)
  const back = decodePseudoGradient('topk', encodePseudoGradient('topk', x), n)
  for (const [from, m] of [[0, 4096], [4096, 130]] as const) {
    const k = Math.ceil(m / 64)
    const kept = [...back.subarray(from, from + m).keys()].filter((i) => back[from + i] !== 0)
    assert.ok(kept.length <= k)
    const order = [...Array(m).keys()].sort((a, b) => Math.abs(x[from + b]!) - Math.abs(x[from + a]!) || a - b)
    // Every kept index is among the k largest (a kept value can quantize to 0, never the reverse).
    const top = new Set(order.slice(0, k))
    for (const i of kept) assert.ok(top.has(i), `chunk at ${from}: kept ${i} is not in the top ${k}`)
    // The largest one is kept with scale absmax/7: exact up to float32 rounding.
    const largest = order[0]!
    assert.ok(Math.abs(back[from + largest]! - x[from + largest]!) <= Math.abs(x[from + largest]!) * 1e-6)
  }
  // All equal: the 64 lowest indices win the tie.
  const ties = new Float32Array(4096).fill(1)
  const tied = decodePseudoGradient('topk', encodePseudoGradient('topk', ties), 4096)
  assert.deepEqual([...tied.keys()].filter((i) => tied[i] !== 0), [...Array(64).keys()])
})

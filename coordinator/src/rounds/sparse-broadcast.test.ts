import { test } from 'vitest'
import assert from 'node:assert/strict'
import { TOPK_CHUNK, TOPK_DENSITY, encodedByteLength } from '@barnraise/protocol'
import { readBroadcastResidual, sparseBroadcast, writeBroadcastResidual } from './sparse-broadcast.ts'

function seeded (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32 - 0.5
  }
}

test('a sparse broadcast sends a topk payload and keeps exactly what it left out', () => {
  const n = 3 * TOPK_CHUNK + 100
  const next = seeded(1)
  const mean = Float32Array.from({ length: n }, () => next())
  const before = new Float32Array(mean)
  const { encoded, applied, residual } = sparseBroadcast(mean, null)
  assert.deepEqual(mean, before, 'the mean is not changed')
  // A carried residual is taken over: its buffer is the new residual.
  const carried = Float32Array.from({ length: n }, () => next() / 100)
  const expected = Float32Array.from(mean, (x, i) => x + carried[i]!)
  const again = sparseBroadcast(mean, carried)
  assert.equal(again.residual, carried)
  for (let i = 0; i < n; i++) assert.ok(Math.abs(again.applied[i]! + again.residual[i]! - expected[i]!) <= 1e-6)
  assert.equal(encoded.byteLength, encodedByteLength('topk', n))
  // One value in 64 of each chunk goes out; the rest stays behind.
  const sent = applied.reduce((k, x) => k + (x !== 0 ? 1 : 0), 0)
  assert.ok(sent <= 3 * TOPK_CHUNK / TOPK_DENSITY + Math.ceil(100 / TOPK_DENSITY), `${sent} values sent`)
  for (let i = 0; i < n; i++) {
    if (applied[i] === 0) assert.equal(residual[i], mean[i], `value ${i} is carried whole`)
    else assert.ok(Math.abs(applied[i]! + residual[i]! - mean[i]!) <= 1e-6, `value ${i}: sent plus kept is the mean`)
  }
})

test('what one broadcast leaves out is carried into the next, so a value too small to go out alone goes out later', () => {
  const n = TOPK_CHUNK
  // One value just under the 64 large ones of each round: left out at first, sent once it has built up.
  const mean = new Float32Array(n)
  for (let i = 0; i < TOPK_DENSITY; i++) mean[i * 2] = 1
  mean[1000] = 0.6
  let carried: Float32Array | null = null
  let sentAt = -1
  for (let round = 0; round < 4 && sentAt < 0; round++) {
    const b = sparseBroadcast(mean, carried)
    if (b.applied[1000] !== 0) sentAt = round
    carried = b.residual
  }
  assert.equal(sentAt, 1, 'left out in round 0, sent in round 1 (0.6 + 0.6 outweighs 1)')
  assert.throws(() => sparseBroadcast(mean, new Float32Array(n - 1)), /holds 4095 values, not the model's 4096/)
})

test('a stored residual reads back as written, and one of the wrong size or not finite is refused', () => {
  const residual = Float32Array.from([0.5, -1.25, 3e-8, 0])
  assert.deepEqual(readBroadcastResidual(writeBroadcastResidual(residual), 4), residual)
  assert.throws(() => readBroadcastResidual(writeBroadcastResidual(residual), 5), /does not hold 5 values/)
  assert.throws(() => readBroadcastResidual(writeBroadcastResidual(Float32Array.from([1, Number.NaN])), 2), /holds NaN at 1/)
  assert.throws(() => readBroadcastResidual(new Uint8Array([1, 2, 3]), 4))
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { decodePseudoGradient, encodePseudoGradient } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import { countParams, initParams, outerStep, presetConfig, writeMomentum } from '@barnraise/trainer'
import { checkpointBytes } from '../checkpoints/checkpoint-weights.ts'
import { checkpointBytesInSlices, decodeInSlices, encodeInSlices, momentumBytesInSlices, outerStepInSlices, residualBytesInSlices, sparseBroadcastInSlices } from './close-in-slices.ts'
import { sparseBroadcast, writeBroadcastResidual } from './sparse-broadcast.ts'
import { TOPK_CHUNK } from '@barnraise/protocol'

// 3 slices of 512 and a ragged tail that ends inside an int8 block.
const N = 3 * 512 + 300
const SLICE = 512
const values = (seed: number): Float32Array => Float32Array.from({ length: N }, (_, i) => Math.fround(Math.sin(i * 0.37 + seed) * (1 + (i % 97)) * 1e-3))

test('a close worked in slices gives the whole calls\' bits: encode, decode, outer step with and without momentum', async () => {
  const update = values(1)
  for (const codec of ['int8', 'fp16', 'fp32', 'topk'] as CodecName[]) {
    const whole = encodePseudoGradient(codec, update)
    const sliced = await encodeInSlices(codec, update, SLICE)
    assert.deepEqual(sliced, whole, `${codec} encode`)
    assert.deepEqual(await decodeInSlices(codec, whole, N, SLICE), decodePseudoGradient(codec, whole, N), `${codec} decode`)
  }
  for (const momentum of [null, values(2)]) {
    const a = values(3)
    const b = values(3)
    const opts = { lr: 0.7, momentum: 0.9 }
    const expected = outerStep(a, update, momentum, opts)
    const got = await outerStepInSlices(b, update, momentum, opts, SLICE)
    assert.deepEqual(b, a, `θ, momentum ${momentum === null ? 'none' : 'carried'}`)
    assert.deepEqual(got, expected, 'the new momentum')
  }
})

test('a bad payload is refused in slices as in one call', async () => {
  const good = encodePseudoGradient('int8', values(4))
  await assert.rejects(decodeInSlices('int8', good.subarray(1), N, SLICE), /payload/)
  const nanScale = good.slice()
  new DataView(nanScale.buffer).setFloat32(260 * 3, Number.NaN, true)
  assert.throws(() => decodePseudoGradient('int8', nanScale, N))
  await assert.rejects(decodeInSlices('int8', nanScale, N, SLICE))
  await assert.rejects(encodeInSlices('fp16', Float32Array.from({ length: N }, (_, i) => i === N - 1 ? 1e6 : 0), SLICE))
})

test('the checkpoint and the momentum are written in slices to the same bytes, letting the event loop through between them', async () => {
  const config = presetConfig('tiny')
  const theta = initParams(config, 5).flat
  assert.equal(theta.length, countParams(config))
  // Another task on the loop, rescheduling itself: it runs only between turns, and a slice of 512 values gives it many.
  let turns = 0
  let ticking = true
  const tick = (): void => { if (ticking) { turns++; setImmediate(tick) } }
  setImmediate(tick)
  const sliced = await checkpointBytesInSlices(config, theta, SLICE)
  const between = turns
  ticking = false
  assert.deepEqual(sliced, checkpointBytes(config, theta), 'the stored checkpoint\'s bytes, so its sha256 (the checkpoint id) is unchanged')
  assert.ok(between > 50, `the event loop ran another task ${between} times while ${theta.length} values were written`)
  const momentum = values(6)
  assert.deepEqual(await momentumBytesInSlices(momentum, SLICE), writeMomentum(momentum))
  assert.deepEqual(await momentumBytesInSlices(momentum.subarray(7, 907), SLICE), writeMomentum(momentum.subarray(7, 907)), 'a view at an offset')
})

test('a sparse broadcast in slices of whole topk chunks gives the whole call\'s payload, applied values and residual', async () => {
  const n = 3 * TOPK_CHUNK + 1000
  const mean = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.11) * (1 + (i % 13)) * 1e-3))
  for (const carried of [null, Float32Array.from({ length: n }, (_, i) => Math.fround(Math.cos(i * 0.07) * 1e-4))]) {
    const whole = sparseBroadcast(mean, carried === null ? null : carried.slice())
    const sliced = await sparseBroadcastInSlices(mean, carried === null ? null : carried.slice(), TOPK_CHUNK)
    const label = carried === null ? 'no residual yet' : 'a residual carried'
    assert.deepEqual(sliced.encoded, whole.encoded, `${label}: the payload`)
    assert.deepEqual(sliced.applied, whole.applied, `${label}: the values applied`)
    assert.deepEqual(sliced.residual, whole.residual, `${label}: the residual left`)
    assert.deepEqual(await residualBytesInSlices(sliced.residual, 512), writeBroadcastResidual(whole.residual), `${label}: the residual's blob`)
  }
  await assert.rejects(sparseBroadcastInSlices(mean, null, 1000), /whole topk chunks/)
  await assert.rejects(sparseBroadcastInSlices(mean, new Float32Array(5)), /residual holds 5 values/)
})

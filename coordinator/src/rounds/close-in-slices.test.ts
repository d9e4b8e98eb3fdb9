import { test } from 'vitest'
import assert from 'node:assert/strict'
import { decodePseudoGradient, encodePseudoGradient } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import { countParams, initParams, outerStep, presetConfig, writeMomentum } from '@barnraise/trainer'
import { checkpointBytes } from '../checkpoints/checkpoint-weights.ts'
import { checkpointBytesInSlices, decodeInSlices, encodeInSlices, momentumBytesInSlices, outerStepInSlices } from './close-in-slices.ts'

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

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { decodePseudoGradient, encodePseudoGradient } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import { outerStep } from '@barnraise/trainer'
import { decodeInSlices, encodeInSlices, outerStepInSlices } from './close-in-slices.ts'

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

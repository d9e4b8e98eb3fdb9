import { test } from 'vitest'
import assert from 'node:assert/strict'
import type { HardwareProfile } from '@barnraise/protocol'
import { CROSS_CLASS_NORM_RATIO, CROSS_CLASS_TOLERANCE, compareDeltas, deviceClass, pickTwins, twinTolerance } from './redundancy.ts'

const relativeDistance = (a: Float32Array, b: Float32Array): number => compareDeltas(a, b).distance
const normRatio = (a: Float32Array, b: Float32Array): number => compareDeltas(a, b).sizes

test('pickTwins doubles floor(fraction × units) units, each with a distinct original, and changes the choice by round', () => {
  assert.deepEqual(pickTwins(5, 0, 1), [])
  assert.deepEqual(pickTwins(1, 0.5, 1), [], 'one node has nobody to be checked against')
  for (const [count, fraction, twins] of [[10, 0.2, 2], [4, 0.5, 2], [5, 0.5, 2], [3, 0.3, 0]] as const) {
    const pairs = pickTwins(count, fraction, 7)
    assert.equal(pairs.length, twins, `${count} units at ${fraction}`)
    const used = pairs.flat()
    assert.equal(new Set(used).size, used.length, 'no unit is in two pairs')
    assert.ok(used.every((i) => i >= 0 && i < count))
  }
  const choices = new Set(Array.from({ length: 12 }, (_, round) => JSON.stringify(pickTwins(10, 0.2, round))))
  assert.ok(choices.size > 6, `the doubled units differ from round to round: ${choices.size} distinct choices in 12 rounds`)
})

test('twins agree when equal, and the tolerance follows the inner steps and the codec', () => {
  const a = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i))
  assert.equal(relativeDistance(a, a), 0)
  assert.equal(relativeDistance(new Float32Array(3), new Float32Array(3)), 0)
  assert.ok(Math.abs(relativeDistance(a, a.map((x) => -x)) - 2) < 1e-9, 'a sign flip is twice the norm away')
  assert.ok(Math.abs(relativeDistance(a, a.map((x) => 1.01 * x)) - 0.01 / 1.01) < 1e-6)
  assert.equal(twinTolerance(10, 'fp32'), 1e-2)
  assert.ok(twinTolerance(10, 'int8') > twinTolerance(10, 'fp16') && twinTolerance(10, 'fp16') > twinTolerance(10, 'fp32'))
  assert.ok(twinTolerance(50, 'fp32') > twinTolerance(10, 'fp32'))
  // Half the work (a node that skipped steps) is far outside it.
  assert.ok(relativeDistance(a, a.map((x) => 0.5 * x)) > twinTolerance(100, 'int8'))
})

test('device classes: TypeScript everywhere alike, torch by GPU or CPU model, unknown executors not comparable', () => {
  const hw = (gpu?: string): HardwareProfile => ({ hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'EPYC 9654', cpuCores: 8, memoryBytes: 1, gpus: gpu === undefined ? [] : [{ name: gpu, memoryMiB: 80_000 }] })
  assert.equal(deviceClass('typescript', hw()), deviceClass('typescript', hw('H100')))
  assert.equal(deviceClass('torch-cuda', hw('NVIDIA H100')), 'torch-cuda:NVIDIA H100')
  assert.notEqual(deviceClass('torch-cuda', hw('NVIDIA H100')), deviceClass('torch-cuda', hw('NVIDIA A100')))
  assert.equal(deviceClass('torch-cpu', hw()), 'torch-cpu:EPYC 9654')
  assert.equal(deviceClass(undefined, hw()), null)
  assert.equal(deviceClass('something-else', hw()), null)
})

test('across device classes: a small vector leaning toward the training points the right way but is not the same size', () => {
  const n = 10_000
  const honest = new Float32Array(n)
  const hint = new Float32Array(n)
  let s = 7
  const next = (): number => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s / 0x7fffffff - 0.5 }
  for (let i = 0; i < n; i++) { honest[i] = next(); hint[i] = 0.2 * honest[i]! + next() }
  // A tenth of the honest size along a vector with cosine ~0.2 to it: within the distance bound, far off in size.
  const scale = 0.1 * Math.sqrt(honest.reduce((t, x) => t + x * x, 0) / hint.reduce((t, x) => t + x * x, 0))
  const lazy = hint.map((x) => x * scale)
  assert.ok(relativeDistance(lazy, honest) <= CROSS_CLASS_TOLERANCE)
  assert.ok(normRatio(lazy, honest) < CROSS_CLASS_NORM_RATIO)
  // An honest twin on other hardware: the same delta up to a few percent.
  const other = honest.map((x) => x * (1 + 0.03 * next()))
  assert.ok(normRatio(other, honest) > 0.95)
  assert.equal(normRatio(new Float32Array(3), new Float32Array(3)), 1)
})

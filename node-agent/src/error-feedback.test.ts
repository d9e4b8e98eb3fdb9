import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodePseudoGradient, encodePseudoGradient } from '@barnraise/protocol'
import { addResidual, readResidual, residualAfter, usesErrorFeedback, writeResidual } from './error-feedback.ts'

function deltas (n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  let s = seed
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = (s / 2 ** 32 - 0.5) * 1e-3 }
  return out
}

test('over rounds, what was sent plus what is kept is everything the node trained (nothing is lost)', async () => {
  assert.equal(usesErrorFeedback('topk'), true)
  assert.equal(usesErrorFeedback('int8'), false)
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-ef-'))
  const n = 10_000
  const trained = new Float64Array(n)
  const sent = new Float64Array(n)
  for (let round = 0; round < 6; round++) {
    const delta = deltas(n, round + 1)
    for (let i = 0; i < n; i++) trained[i]! += delta[i]!
    const { residual, note } = await readResidual(dir, n)
    assert.equal(note, null)
    addResidual(delta, residual, 1)
    const payload = encodePseudoGradient('topk', delta)
    const decoded = decodePseudoGradient('topk', payload, n)
    for (let i = 0; i < n; i++) sent[i]! += decoded[i]!
    await writeResidual(dir, residualAfter(delta, 'topk', payload))
  }
  const { residual } = await readResidual(dir, n)
  let worst = 0
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(sent[i]! + residual[i]! - trained[i]!))
  assert.ok(worst < 1e-9, `sent + kept = trained, off by at most float32 rounding (${worst})`)
  // The residual is not zero: topk dropped most coordinates.
  assert.ok(residual.some((x) => x !== 0))
})

test('a missing, foreign or damaged residual file gives zeros and says why', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-ef-'))
  assert.deepEqual(await readResidual(dir, 3), { residual: new Float32Array(3), note: null })
  await writeResidual(dir, new Float32Array([1, 2, 3]))
  assert.deepEqual([...(await readResidual(dir, 3)).residual], [1, 2, 3])
  const other = await readResidual(dir, 4)
  assert.deepEqual([...other.residual], [0, 0, 0, 0])
  assert.match(other.note!, /does not fit this run's 4 parameters/)
  const bytes = await readFile(join(dir, 'error-feedback.bin'))
  await writeFile(join(dir, 'error-feedback.bin'), bytes.subarray(0, bytes.length - 2))
  assert.match((await readResidual(dir, 3)).note!, /does not fit/)
  const nan = Buffer.from(bytes)
  nan.writeFloatLE(Number.NaN, 16 + 4)
  await writeFile(join(dir, 'error-feedback.bin'), nan)
  const refused = await readResidual(dir, 3)
  assert.match(refused.note!, /holds NaN at 1/)
  assert.deepEqual([...refused.residual], [0, 0, 0])
})

test('a decayed residual carries that share of what was left out: unsent coordinates fade round by round', () => {
  const residual = Float32Array.from([1, -2, 0.5, 0])
  const plain = Float32Array.from([0.25, 0.25, 0.25, 0.25])
  addResidual(plain, residual, 1)
  assert.deepEqual(plain, Float32Array.from([1.25, -1.75, 0.75, 0.25]))
  const decayed = Float32Array.from([0.25, 0.25, 0.25, 0.25])
  addResidual(decayed, residual, 0.5)
  assert.deepEqual(decayed, Float32Array.from([0.75, -0.75, 0.5, 0.25]))
  // A coordinate topk never sends, with nothing new trained: β^t of it is left after t rounds.
  const n = 4096
  let kept: Float32Array = new Float32Array(n)
  kept[4000] = 1e-6
  for (let round = 0; round < 3; round++) {
    const delta = new Float32Array(n)
    for (let i = 0; i < 64; i++) delta[i] = 1
    addResidual(delta, kept, 0.7)
    kept = residualAfter(delta, 'topk', encodePseudoGradient('topk', delta))
  }
  assert.ok(Math.abs(kept[4000]! - 1e-6 * 0.7 ** 3) < 1e-12, `${kept[4000]}`)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { appendFile, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodePseudoGradient, encodePseudoGradient, encodeSafetensors, float32ToTensor } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import { countParams, encodeNesterovState, initParams, momentumParts, outerStep, presetConfig, storedCheckpointParts, writeMomentum } from '@barnraise/trainer'
import { checkpointBytes } from '../checkpoints/checkpoint-weights.ts'
import { carriedResidual, encodeAppliedInSlices, outerStepInSlices, residualParts, sparseBroadcastInSlices, streamedOuterStep, streamedSparseBroadcast } from './close-in-slices.ts'
import { DiskBlobStore, sha256Hex } from '../blobs/blob-store.ts'
import { readBroadcastResidual, sparseBroadcast, writeBroadcastResidual } from './sparse-broadcast.ts'
import { l2Norm } from './accumulator.ts'
import { TOPK_CHUNK } from '@barnraise/protocol'

// 3 slices of 512 and a ragged tail that ends inside an int8 block.
const N = 3 * 512 + 300
const SLICE = 512
const values = (seed: number): Float32Array => Float32Array.from({ length: N }, (_, i) => Math.fround(Math.sin(i * 0.37 + seed) * (1 + (i % 97)) * 1e-3))

/** Parts end to end, as the blob store writes them. */
function joined (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}

test('a close worked in slices gives the whole calls\' bits: encode with the values applied, outer step with and without momentum', async () => {
  const update = values(1)
  for (const codec of ['int8', 'fp16', 'fp32', 'topk'] as CodecName[]) {
    const whole = encodePseudoGradient(codec, update)
    const applied = update.slice()
    const sliced = await encodeAppliedInSlices(codec, applied, SLICE)
    assert.deepEqual(sliced, whole, `${codec} encode`)
    assert.deepEqual(applied, decodePseudoGradient(codec, whole, N), `${codec}: the values replaced by what the payload decodes to`)
  }
  for (const momentum of [null, values(2)]) {
    const a = values(3)
    const b = values(3)
    const opts = { lr: 0.7, momentum: 0.9 }
    const expected = outerStep(a, update, momentum, opts)
    const carried = momentum?.slice() ?? null
    const given = update.slice()
    const got = await outerStepInSlices(b, given, carried, opts, SLICE)
    assert.deepEqual(b, a, `θ, momentum ${momentum === null ? 'none' : 'carried'}`)
    assert.deepEqual(got, expected, 'the new momentum')
    assert.equal(got, carried ?? given, 'in the carried momentum\'s memory, or with none the update\'s')
    assert.deepEqual(given, update, 'the update is not changed')
  }
  await assert.rejects(outerStepInSlices(values(3), values(1).subarray(1), null, { lr: 0.7, momentum: 0.9 }, SLICE), /one size/)
})

test('a value a codec cannot carry is refused in slices as in one call', async () => {
  const big = Float32Array.from({ length: N }, (_, i) => i === N - 1 ? 1e6 : 0)
  assert.throws(() => encodePseudoGradient('fp16', big))
  await assert.rejects(encodeAppliedInSlices('fp16', big, SLICE))
})

test('the checkpoint and the momentum are written as parts that are their bytes end to end, the values\' own memory among them', () => {
  const config = presetConfig('tiny')
  const theta = initParams(config, 5).flat
  assert.equal(theta.length, countParams(config))
  const parts = storedCheckpointParts(config, theta)
  assert.deepEqual(joined(parts), checkpointBytes(config, theta), 'the stored checkpoint\'s bytes, so its sha256 (the checkpoint id) is unchanged')
  assert.ok(parts.slice(1).every((p) => p.buffer === theta.buffer), 'no copy of the weights')
  const momentum = values(6)
  assert.deepEqual(joined(momentumParts(momentum)), writeMomentum(momentum))
  assert.deepEqual(joined(momentumParts(momentum.subarray(7, 907))), writeMomentum(momentum.subarray(7, 907)), 'a view at an offset')
})

test('a sparse broadcast in slices of whole topk chunks gives the whole call\'s payload, applied values and residual', async () => {
  const n = 3 * TOPK_CHUNK + 1000
  const mean = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.11) * (1 + (i % 13)) * 1e-3))
  for (const carried of [null, Float32Array.from({ length: n }, (_, i) => Math.fround(Math.cos(i * 0.07) * 1e-4))]) {
    const whole = sparseBroadcast(mean, carried === null ? null : carried.slice())
    const given = mean.slice()
    const sliced = await sparseBroadcastInSlices(given, carried === null ? null : carried.slice(), TOPK_CHUNK)
    const label = carried === null ? 'no residual yet' : 'a residual carried'
    assert.deepEqual(sliced.encoded, whole.encoded, `${label}: the payload`)
    assert.deepEqual(sliced.applied, whole.applied, `${label}: the values applied`)
    assert.equal(sliced.applied, given, `${label}: applied in the mean's own memory`)
    assert.deepEqual(sliced.residual, whole.residual, `${label}: the residual left`)
    assert.deepEqual(joined(residualParts(sliced.residual)), writeBroadcastResidual(whole.residual), `${label}: the residual's blob`)
  }
  await assert.rejects(sparseBroadcastInSlices(mean, null, 1000), /whole topk chunks/)
  await assert.rejects(sparseBroadcastInSlices(mean, new Float32Array(5)), /residual holds 5 values/)
})

test('the momentum streamed through the outer step gives the whole step\'s θ and momentum blob, whatever the read\'s chunks', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-close-'))
  try {
    const store = new DiskBlobStore(join(dir, 'blobs'))
    const opts = { lr: 0.7, momentum: 0.9 }
    const update = values(1)
    const momentum = values(2)
    const sha = await store.put(writeMomentum(momentum))
    const file = (s: string): string => join(dir, 'blobs', s.slice(0, 2), s)
    // Chunks of 7 bytes: values cut across chunks, and slices of 512 values across both.
    const odd = { size: async (s: string) => await store.size(s), createReadStream: (s: string, start?: number, end?: number) => createReadStream(file(s), { start, end, highWaterMark: 7 }) }
    for (const blobs of [store, odd]) {
      const expectedTheta = values(3)
      const expectedMomentum = outerStep(expectedTheta, update, momentum.slice(), opts)
      const theta = values(3)
      const streamed = await streamedOuterStep(blobs, sha, theta, update, opts, SLICE)
      assert.ok(streamed !== undefined)
      assert.equal(streamed.finished(), false)
      const next = await store.put(streamed.bytes)
      assert.equal(streamed.finished(), true)
      assert.deepEqual(theta, expectedTheta, 'θ stepped in place, to the bit')
      assert.equal(next, sha256Hex(writeMomentum(expectedMomentum)), 'the new momentum\'s blob, to the bit')
      assert.deepEqual(await store.get(next), writeMomentum(expectedMomentum))
    }
    // Not writeMomentum's layout for this size: nothing read, θ untouched, the caller reads it whole.
    const theta = values(3)
    for (const other of [writeMomentum(momentum.subarray(1)), encodeNesterovState({ step: 1, buffer: momentum })]) {
      assert.equal(await streamedOuterStep(store, await store.put(other), theta, update, opts, SLICE), undefined)
    }
    assert.deepEqual(theta, values(3))
    await assert.rejects(streamedOuterStep(store, sha, theta, update.subarray(1), opts, SLICE), /one size/)
    // A file cut short while it is read (its size said whole): the source throws, nothing is stored.
    const cut = await store.put(writeMomentum(values(4)))
    const whole = await store.size(cut)
    const streamed = await streamedOuterStep(store, cut, values(3), update, opts, SLICE)
    await truncate(file(cut), whole! - 10)
    await assert.rejects(store.put(streamed!.bytes), /ended after 1536 of its 1836 values/)
    assert.equal(streamed!.finished(), false)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('the residuals streamed from blob to blob give the whole sparse broadcast\'s payload, values applied and residual blob, across slices and whatever the read\'s chunks', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-close-'))
  try {
    const store = new DiskBlobStore(join(dir, 'blobs'))
    const file = (s: string): string => join(dir, 'blobs', s.slice(0, 2), s)
    // Chunks of 7 bytes: values cut across chunks, and slices of one topk chunk across both.
    const odd = { size: async (s: string) => await store.size(s), get: async (s: string) => await store.get(s), createReadStream: (s: string, start?: number, end?: number) => createReadStream(file(s), { start, end, highWaterMark: 7 }) }
    // Four slices, the last one ragged (a topk chunk cut short).
    const n = 3 * TOPK_CHUNK + 1000
    const mean = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.11) * (1 + (i % 13)) * 1e-3))
    const carried = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.cos(i * 0.07) * 1e-3))
    const carriedSha = await store.put(writeBroadcastResidual(carried))
    for (const blobs of [store, odd]) {
      for (const residual of [null, carried]) {
        const label = `${residual === null ? 'no residual yet' : 'a residual carried'}, ${blobs === store ? 'the store\'s chunks' : 'chunks of 7 bytes'}`
        const whole = sparseBroadcast(mean, residual?.slice() ?? null)
        const checked = residual === null ? null : await carriedResidual(blobs, carriedSha, n, TOPK_CHUNK)
        assert.deepEqual(checked, residual === null ? null : { stream: carriedSha }, label)
        const given = mean.slice()
        const streamed = streamedSparseBroadcast(blobs, residual === null ? null : carriedSha, given, TOPK_CHUNK)
        assert.deepEqual(given, mean, `${label}: nothing is worked out before the residual's blob is read`)
        const next = await store.put(streamed.residual)
        assert.equal(streamed.finished(), true)
        assert.equal(next, sha256Hex(writeBroadcastResidual(whole.residual)), `${label}: the new residual's blob, to the bit`)
        assert.deepEqual(streamed.encoded, whole.encoded, `${label}: the payload`)
        assert.deepEqual(given, whole.applied, `${label}: the values applied, in the mean's own memory`)
        assert.equal(streamed.residualNorm(), l2Norm(whole.residual), `${label}: the residual's norm`)
      }
    }
    assert.throws(() => streamedSparseBroadcast(store, null, mean, 1000), /whole topk chunks/)
    // A reader that stops after the first slice (a full disk): the carried blob's file is closed.
    const opened: ReturnType<typeof createReadStream>[] = []
    const watched = { createReadStream: (s: string, start?: number, end?: number) => { const r = store.createReadStream(s, start, end); opened.push(r); return r } }
    const stopped = streamedSparseBroadcast(watched, carriedSha, mean.slice(), TOPK_CHUNK)
    await stopped.residual.next()
    await stopped.residual.next()
    assert.equal(opened.length, 1)
    assert.equal(opened[0]!.destroyed, false)
    await stopped.residual.return(undefined)
    assert.equal(opened[0]!.destroyed, true)
    assert.equal(stopped.finished(), false)
    // A residual checked, then cut short, run long or damaged while the broadcast reads it: the source throws.
    for (const [damage, message] of [
      [async (s: string) => { await truncate(file(s), (await store.size(s))! - 10) }, /ended after 12288 of its 13288 values/],
      [async (s: string) => { await appendFile(file(s), new Uint8Array(8)) }, /holds more than 13288 values/],
      [async (s: string) => { const bytes = await store.get(s); new DataView(bytes.buffer, bytes.byteOffset).setFloat32(bytes.byteLength - 4, Number.NaN, true); await writeFile(file(s), bytes) }, /element 999 is NaN/]
    ] as const) {
      const sha = await store.put(writeBroadcastResidual(carried.map((x) => x * 2)))
      assert.ok('stream' in (await carriedResidual(store, sha, n, TOPK_CHUNK)))
      await damage(sha)
      await assert.rejects(store.put(streamedSparseBroadcast(store, sha, mean.slice(), TOPK_CHUNK).residual), message)
      await store.delete(sha)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a carried residual lost, of another size, damaged or not finite is dropped as reading it whole refuses it; one in another layout is read whole', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-close-'))
  try {
    const store = new DiskBlobStore(join(dir, 'blobs'))
    const n = 2 * TOPK_CHUNK + 3
    const residual = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i) * 1e-3))
    const dropped = async (bytes: Uint8Array | null): Promise<string> => {
      const sha = bytes === null ? 'e'.repeat(64) : await store.put(bytes)
      const got = await carriedResidual(store, sha, n, TOPK_CHUNK)
      assert.ok('dropped' in got, `dropped, not ${Object.keys(got)[0]}`)
      // What the close read whole refused, it refuses: the same cause.
      await assert.rejects(async () => readBroadcastResidual(await store.get(sha), n), { message: got.dropped.message })
      return got.dropped.message
    }
    assert.match(await dropped(null), /ENOENT/, 'its file lost')
    assert.match(await dropped(writeBroadcastResidual(residual.subarray(1))), /does not hold 8195 values/, 'one value short')
    assert.match(await dropped(writeBroadcastResidual(new Float32Array(n + 1))), /does not hold 8195 values/, 'one value over')
    const badHeader = writeBroadcastResidual(residual)
    badHeader[9] = 0x21
    assert.match(await dropped(badHeader), /header is not valid/, 'its header damaged')
    // A value not finite in a later slice than the first: found before any slice is worked out.
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const values = residual.slice()
      values[TOPK_CHUNK + 5] = bad
      assert.equal(await dropped(writeBroadcastResidual(values)), `the broadcast residual holds ${bad} at ${TOPK_CHUNK + 5}`)
    }
    // The same residual as F16, or with metadata: not the layout written here, read whole as before.
    const halves = encodeSafetensors(new Map([['residual', float32ToTensor(residual, [n], 'F16')]]))
    const withMetadata = encodeSafetensors(new Map([['residual', float32ToTensor(residual, [n])]]), { note: 'x' })
    for (const bytes of [halves, withMetadata]) {
      const got = await carriedResidual(store, await store.put(bytes), n, TOPK_CHUNK)
      assert.ok('whole' in got)
      assert.deepEqual(got.whole, readBroadcastResidual(bytes, n))
    }
    assert.deepEqual(await carriedResidual(store, await store.put(writeBroadcastResidual(residual)), n, TOPK_CHUNK), { stream: sha256Hex(writeBroadcastResidual(residual)) })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

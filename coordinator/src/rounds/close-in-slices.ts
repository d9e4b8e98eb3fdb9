// A round close's whole-model arithmetic a slice at a time, the event loop let through between
// slices: at 125M parameters the int8 encode of the round's mean alone held it for about 3 s,
// the outer step for as long again (docs/scaling.md). Every step here works value by value (or
// int8 block by block), so a slice's results are the whole call's, to the bit: what nodes
// compute in one call when they rebuild a base, the coordinator computes here in slices.
import { TOPK_CHUNK, decodePseudoGradient, encodePseudoGradient, encodedByteLength, float32ToTensor, safetensorsHeader, safetensorsParts } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import { momentumHeader, outerStep } from '@barnraise/trainer'
import type { BlobStore } from '../blobs/blob-store.ts'
import { readBroadcastResidual, sparseBroadcast } from './sparse-broadcast.ts'
import type { SparseBroadcast } from './sparse-broadcast.ts'

/** Values between turns of the event loop: 4M (16 MiB of float32; a whole number of int8 blocks). */
export const CLOSE_SLICE = 4 * 1024 * 1024

/** Codecs whose payload is its slices' payloads end to end (no header; int8 blocks never straddle CLOSE_SLICE). */
export const SLICEABLE_CODECS: ReadonlySet<CodecName> = new Set(['int8', 'fp16', 'fp32'])

async function turn (): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
}

/** Calls `each(from, to)` over [0, length) in slices, yielding to the event loop between them. */
async function inSlices (length: number, each: (from: number, to: number) => void, slice = CLOSE_SLICE): Promise<void> {
  for (let from = 0; from < length; from += slice) {
    const to = Math.min(from + slice, length)
    each(from, to)
    if (to < length) await turn()
  }
}

/**
 * `outerStep` a slice at a time, θ and the momentum both in place: the new momentum is
 * `momentum`'s own buffer, or with none yet `update`'s (a first step's momentum is the update
 * itself, value for value). A new momentum of its own was a model-sized buffer more at a close.
 */
export async function outerStepInSlices (theta: Float32Array, update: Float32Array, momentum: Float32Array | null, opts: { lr: number, momentum: number }, slice = CLOSE_SLICE): Promise<Float32Array> {
  if (update.length !== theta.length || (momentum !== null && momentum.length !== theta.length)) {
    throw new Error(`the outer step needs θ, the update and the momentum of one size, not ${theta.length}, ${update.length} and ${momentum?.length ?? 'none'}`)
  }
  await inSlices(theta.length, (a, b) => {
    const next = outerStep(theta.subarray(a, b), update.subarray(a, b), momentum === null ? null : momentum.subarray(a, b), opts)
    momentum?.set(next, a)
  }, slice)
  return momentum ?? update
}

/** Whether blob `sha` is `header` then `n` float32 values: its size, and its first bytes read. */
async function storedAs (blobs: Pick<BlobStore, 'size' | 'createReadStream'>, sha: string, header: Uint8Array, n: number): Promise<boolean> {
  if (await blobs.size(sha) !== header.byteLength + 4 * n) return false
  const stored = new Uint8Array(header.byteLength)
  let got = 0
  for await (const chunk of blobs.createReadStream(sha, 0, header.byteLength - 1) as AsyncIterable<Uint8Array>) {
    stored.set(chunk.subarray(0, stored.byteLength - got), got)
    got += Math.min(chunk.byteLength, stored.byteLength - got)
  }
  return got === header.byteLength && stored.every((b, i) => b === header[i])
}

/**
 * The `n` float32 values stored in blob `sha` from byte `start`, a slice at a time, each slice
 * filled from the file's chunks (they need not end on a value): into memory of its own, which the
 * caller may keep, or with `reuse` into one buffer, valid until the next slice is asked for.
 * Throws where the blob holds more values or fewer.
 */
async function * storedSlices (blobs: Pick<BlobStore, 'createReadStream'>, sha: string, start: number, n: number, slice: number, reuse = false): AsyncGenerator<Float32Array> {
  let at = 0
  let values = new Float32Array(Math.min(slice, n))
  let bytes = new Uint8Array(values.buffer)
  let filled = 0
  for await (const chunk of blobs.createReadStream(sha, start) as AsyncIterable<Uint8Array>) {
    for (let off = 0; off < chunk.byteLength;) {
      const want = Math.min(bytes.byteLength - filled, chunk.byteLength - off)
      if (want <= 0) throw new Error(`the blob ${sha} holds more than ${n} values`)
      bytes.set(chunk.subarray(off, off + want), filled)
      filled += want
      off += want
      if (filled === bytes.byteLength) {
        at += values.length
        yield values
        const count = Math.min(slice, n - at)
        values = reuse ? values.subarray(0, count) : new Float32Array(count)
        bytes = new Uint8Array(values.buffer, 0, 4 * count)
        filled = 0
      }
    }
  }
  if (at !== n || filled !== 0) throw new Error(`the blob ${sha} ended after ${at} of its ${n} values`)
}

/** `start` plus Σ x² over `values` in float64, in order: l2Norm's running sum carried across slices, the same float. */
function sumOfSquares (values: Float32Array, start: number): number {
  let s = start
  for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!
  return s
}

/** The first value of `values` that is not finite, as [index, value], or undefined. */
function notFinite (values: Float32Array): [number, number] | undefined {
  // NaN and ±Infinity are the float32s whose exponent bits are all set.
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length)
  for (let i = 0; i < bits.length; i++) if ((bits[i]! & 0x7f800000) === 0x7f800000) return [i, values[i]!]
  return undefined
}

/**
 * `outerStepInSlices` with the momentum streamed through instead of read whole: its blob (in
 * writeMomentum's layout) is read a slice at a time, each slice stepped (θ in place) and handed
 * on as the new momentum blob's bytes, header first, for the blob store to hash and write as they
 * come. The momentum is never in memory whole: a model-sized buffer fewer at a close (4 GB at
 * 1B parameters). θ is stepped as the bytes are read, and whole once all of them were; a read that
 * fails or ends early throws from the source; `finished` says whether it was read to its end.
 * Undefined (nothing read) where the stored blob is not in that layout for θ's size: the caller
 * reads it whole then (readMomentum).
 */
export async function streamedOuterStep (blobs: Pick<BlobStore, 'size' | 'createReadStream'>, momentumSha: string, theta: Float32Array, update: Float32Array, opts: { lr: number, momentum: number }, slice = CLOSE_SLICE): Promise<{ bytes: AsyncGenerator<Uint8Array>, finished: () => boolean } | undefined> {
  const n = theta.length
  if (update.length !== n) throw new Error(`the outer step needs θ and the update of one size, not ${n} and ${update.length}`)
  const header = momentumHeader(n)
  if (!await storedAs(blobs, momentumSha, header, n)) return undefined
  let finished = false
  const bytes = (async function * () {
    yield header
    // One slice of the stored momentum, filled from the file's chunks (they need not end on a value).
    const carried = new Uint8Array(4 * Math.min(slice, n))
    let at = 0
    let filled = 0
    const stepped = (): Uint8Array => {
      const count = filled / 4
      const next = outerStep(theta.subarray(at, at + count), update.subarray(at, at + count), new Float32Array(carried.buffer, 0, count), opts)
      at += count
      filled = 0
      return new Uint8Array(next.buffer, next.byteOffset, next.byteLength)
    }
    for await (const chunk of blobs.createReadStream(momentumSha, header.byteLength) as AsyncIterable<Uint8Array>) {
      for (let off = 0; off < chunk.byteLength;) {
        const want = Math.min(4 * Math.min(slice, n - at) - filled, chunk.byteLength - off)
        if (want <= 0) throw new Error(`the momentum blob ${momentumSha} holds more than ${n} values`)
        carried.set(chunk.subarray(off, off + want), filled)
        filled += want
        off += want
        if (filled === 4 * Math.min(slice, n - at)) yield stepped()
      }
    }
    if (at !== n || filled !== 0) throw new Error(`the momentum blob ${momentumSha} ended after ${at} of its ${n} values`)
    finished = true
  })()
  return { bytes, finished: () => finished }
}

/**
 * `encodePseudoGradient`, a slice at a time where the codec allows (else in one go), with
 * `values` replaced by what the payload decodes to: what nodes apply is what the coordinator
 * applies, in the same memory rather than a decoded copy. On a throw `values` may be partly replaced.
 */
export async function encodeAppliedInSlices (codec: CodecName, values: Float32Array, slice = CLOSE_SLICE): Promise<Uint8Array> {
  if (!SLICEABLE_CODECS.has(codec)) {
    const whole = encodePseudoGradient(codec, values)
    values.set(decodePseudoGradient(codec, whole, values.length))
    return whole
  }
  const out = new Uint8Array(encodedByteLength(codec, values.length))
  await inSlices(values.length, (a, b) => {
    const part = encodePseudoGradient(codec, values.subarray(a, b))
    out.set(part, encodedByteLength(codec, a))
    values.set(decodePseudoGradient(codec, part, b - a), a)
  }, slice)
  return out
}

/** topk's payload header: the value count as two little-endian u32 halves (protocol/src/codecs/topk.ts). */
const TOPK_HEADER_BYTES = 8

/**
 * `sparseBroadcast`, a slice at a time. A slice is a whole number of topk chunks and each
 * chunk's top k is its own, so the payload (one header, then the slices' chunks end to end),
 * the values applied and the residual are the whole call's, to the bit. Both buffers are taken
 * over: `mean`'s becomes the values applied (each slice's mean is spent once its part is worked
 * out) and `residual`'s the new residual, as in the whole call; no model-sized buffer is made
 * but a first residual.
 */
export async function sparseBroadcastInSlices (mean: Float32Array, residual: Float32Array | null, slice = CLOSE_SLICE): Promise<SparseBroadcast> {
  if (slice % TOPK_CHUNK !== 0) throw new Error(`a sparse broadcast's slice must be whole topk chunks of ${TOPK_CHUNK} values, not ${slice}`)
  if (residual !== null && residual.length !== mean.length) throw new Error(`the broadcast residual holds ${residual.length} values, not the model's ${mean.length}`)
  const n = mean.length
  const encoded = new Uint8Array(encodedByteLength('topk', n))
  const header = new DataView(encoded.buffer, 0, TOPK_HEADER_BYTES)
  header.setUint32(0, n % 2 ** 32, true)
  header.setUint32(4, Math.floor(n / 2 ** 32), true)
  const left = residual ?? new Float32Array(n)
  await inSlices(n, (a, b) => {
    const part = sparseBroadcast(mean.subarray(a, b), residual === null ? null : residual.subarray(a, b))
    // Every chunk before `a` is full, so its bytes start where a payload of `a` values ends.
    encoded.set(part.encoded.subarray(TOPK_HEADER_BYTES), a === 0 ? TOPK_HEADER_BYTES : encodedByteLength('topk', a))
    mean.set(part.applied, a)
    if (residual === null) left.set(part.residual, a)
  }, slice)
  return { encoded, applied: mean, residual: left }
}

/** The residual blob's first bytes for `n` values (writeBroadcastResidual's layout, as residualParts writes it). */
function residualHeader (n: number): Uint8Array {
  return safetensorsHeader(new Map([['residual', { dtype: 'F32' as const, shape: [n] }]])).header
}

/**
 * How a close reads the sparse broadcast's carried residual, blob `sha`, for a model of `n`
 * values: streamed (`stream`: stored in writeBroadcastResidual's layout, every value finite,
 * checked by reading it through once; never whole in memory), read whole (`whole`: another
 * layout readBroadcastResidual accepts), or not at all (`dropped`, why: its file lost, damaged,
 * of another size, or a value not finite), as readBroadcastResidual refuses it. Its values are
 * checked before any is used, so a broadcast that drops it starts afresh from an unchanged mean.
 */
export async function carriedResidual (blobs: Pick<BlobStore, 'size' | 'createReadStream' | 'get'>, sha: string, n: number, slice = CLOSE_SLICE): Promise<{ stream: string } | { whole: Float32Array } | { dropped: Error }> {
  try {
    const header = residualHeader(n)
    if (!await storedAs(blobs, sha, header, n)) return { whole: readBroadcastResidual(await blobs.get(sha), n) }
    let at = 0
    for await (const values of storedSlices(blobs, sha, header.byteLength, n, slice, true)) {
      const bad = notFinite(values)
      if (bad !== undefined) throw new Error(`the broadcast residual holds ${bad[1]} at ${at + bad[0]}`)
      at += values.length
    }
    return { stream: sha }
  } catch (err) {
    return { dropped: err instanceof Error ? err : new Error(String(err)) }
  }
}

/** A sparse broadcast worked out as the new residual's blob is read (streamedSparseBroadcast). */
export interface StreamedSparseBroadcast {
  /** The new residual's blob, header first, each slice's bytes made as they are asked for. */
  residual: AsyncGenerator<Uint8Array>
  /** The topk payload: whole once `residual` was read to its end. */
  encoded: Uint8Array
  /** Whether `residual` was read to its end (and so the mean wholly replaced by the values applied). */
  finished: () => boolean
  /** The new residual's L2 norm (float64, as l2Norm), once finished. */
  residualNorm: () => number
}

/**
 * `sparseBroadcastInSlices` with the residuals streamed: the carried one (`residualSha`, checked
 * by carriedResidual; null: none yet) read from its blob a slice at a time, and the new one handed
 * on a slice at a time as its blob's bytes for the blob store to hash and write as they come. No
 * residual is ever whole in memory: a model-sized buffer fewer at a close (4 GB at 1B
 * parameters). The payload, the values applied (in `mean`'s memory, a slice replaced as its part
 * is worked out) and the new residual's blob are sparseBroadcastInSlices', to the bit. A carried
 * blob that ends early, runs long or holds a value not finite (it changed since it was checked)
 * throws from the source, `mean` partly replaced: the close fails.
 */
export function streamedSparseBroadcast (blobs: Pick<BlobStore, 'createReadStream'>, residualSha: string | null, mean: Float32Array, slice = CLOSE_SLICE): StreamedSparseBroadcast {
  if (slice % TOPK_CHUNK !== 0) throw new Error(`a sparse broadcast's slice must be whole topk chunks of ${TOPK_CHUNK} values, not ${slice}`)
  const n = mean.length
  const header = residualHeader(n)
  const encoded = new Uint8Array(encodedByteLength('topk', n))
  const topkHeader = new DataView(encoded.buffer, 0, TOPK_HEADER_BYTES)
  topkHeader.setUint32(0, n % 2 ** 32, true)
  topkHeader.setUint32(4, Math.floor(n / 2 ** 32), true)
  let finished = false
  let squares = 0
  const residual = (async function * () {
    // Checks the host is little-endian, so the F32 bytes are the values' own memory.
    float32ToTensor(new Float32Array(0), [0])
    yield header
    const carried = residualSha === null ? undefined : storedSlices(blobs, residualSha, header.byteLength, n, slice)
    try {
      for (let a = 0; a < n; a += slice) {
        const b = Math.min(a + slice, n)
        let left: Float32Array | null = null
        if (carried !== undefined) {
          const next = await carried.next()
          if (next.done === true) throw new Error(`the broadcast residual ${residualSha} ended after ${a} of its ${n} values`)
          left = next.value
        }
        // The carried slice's memory becomes this slice's new residual, handed on and not touched
        // again. topk's encode refuses a value not finite (one in a residual that changed since
        // carriedResidual read it through).
        const part = sparseBroadcast(mean.subarray(a, b), left)
        // Every chunk before `a` is full, so its bytes start where a payload of `a` values ends.
        encoded.set(part.encoded.subarray(TOPK_HEADER_BYTES), a === 0 ? TOPK_HEADER_BYTES : encodedByteLength('topk', a))
        mean.set(part.applied, a)
        squares = sumOfSquares(part.residual, squares)
        yield new Uint8Array(part.residual.buffer, part.residual.byteOffset, part.residual.byteLength)
      }
      // The carried blob read to its end: one that runs long throws here.
      if (carried !== undefined && (await carried.next()).done !== true) throw new Error(`the broadcast residual ${residualSha} holds more than ${n} values`)
      finished = true
    } finally {
      // A reader that stopped early (the disk full) leaves no file open.
      await carried?.return(undefined)
    }
  })()
  return { residual, encoded, finished: () => finished, residualNorm: () => Math.sqrt(squares) }
}

/** The sparse broadcast's residual blob (writeBroadcastResidual in sparse-broadcast.ts) as parts end to end, `residual`'s own memory among them; it must not change while they are used. */
export function residualParts (residual: Float32Array): Uint8Array[] {
  // Checks the host is little-endian, so the F32 bytes are the values' own memory.
  float32ToTensor(new Float32Array(0), [0])
  const view = { dtype: 'F32' as const, shape: [residual.length], data: new Uint8Array(residual.buffer, residual.byteOffset, residual.byteLength) }
  return safetensorsParts(new Map([['residual', view]]))
}

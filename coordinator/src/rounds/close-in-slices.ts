// A round close's whole-model arithmetic a slice at a time, the event loop let through between
// slices: at 125M parameters the int8 encode of the round's mean alone held it for about 3 s,
// the outer step for as long again (docs/scaling.md). Every step here works value by value (or
// int8 block by block), so a slice's results are the whole call's, to the bit: what nodes
// compute in one call when they rebuild a base, the coordinator computes here in slices.
import { TOPK_CHUNK, decodePseudoGradient, encodePseudoGradient, encodeSafetensorsInSlices, encodedByteLength, float32ToTensor } from '@barnraise/protocol'
import type { CodecName, LlamaConfig } from '@barnraise/protocol'
import { outerStep, storedCheckpointBytesInSlices, writeMomentumInSlices } from '@barnraise/trainer'
import { sparseBroadcast } from './sparse-broadcast.ts'
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

/** `outerStep` (θ in place, the new momentum returned), a slice at a time. */
export async function outerStepInSlices (theta: Float32Array, update: Float32Array, momentum: Float32Array | null, opts: { lr: number, momentum: number }, slice = CLOSE_SLICE): Promise<Float32Array> {
  const next = new Float32Array(theta.length)
  await inSlices(theta.length, (a, b) => {
    next.set(outerStep(theta.subarray(a, b), update.subarray(a, b), momentum === null ? null : momentum.subarray(a, b), opts), a)
  }, slice)
  return next
}

/** `encodePseudoGradient`, a slice at a time where the codec allows (else in one go). */
export async function encodeInSlices (codec: CodecName, values: Float32Array, slice = CLOSE_SLICE): Promise<Uint8Array> {
  if (!SLICEABLE_CODECS.has(codec)) return encodePseudoGradient(codec, values)
  const out = new Uint8Array(encodedByteLength(codec, values.length))
  await inSlices(values.length, (a, b) => { out.set(encodePseudoGradient(codec, values.subarray(a, b)), encodedByteLength(codec, a)) }, slice)
  return out
}

/** `decodePseudoGradient`, a slice at a time where the codec allows (else in one go); the length is checked first. */
export async function decodeInSlices (codec: CodecName, bytes: Uint8Array, length: number, slice = CLOSE_SLICE): Promise<Float32Array> {
  if (!SLICEABLE_CODECS.has(codec) || bytes.byteLength !== encodedByteLength(codec, length)) return decodePseudoGradient(codec, bytes, length)
  const out = new Float32Array(length)
  await inSlices(length, (a, b) => {
    out.set(decodePseudoGradient(codec, bytes.subarray(encodedByteLength(codec, a), encodedByteLength(codec, b)), b - a), a)
  }, slice)
  return out
}

/** The checkpoint's stored bytes (checkpointBytes in checkpoints/checkpoint-weights.ts), copied a slice at a time; θ must not change until it resolves. */
export async function checkpointBytesInSlices (config: LlamaConfig, theta: Float32Array, slice = CLOSE_SLICE): Promise<Uint8Array> {
  return await storedCheckpointBytesInSlices(config, theta, { sliceBytes: 4 * slice, yieldTurn: turn })
}

/** The outer momentum's blob (writeMomentum), copied a slice at a time; `momentum` must not change until it resolves. */
export async function momentumBytesInSlices (momentum: Float32Array, slice = CLOSE_SLICE): Promise<Uint8Array> {
  return await writeMomentumInSlices(momentum, { sliceBytes: 4 * slice, yieldTurn: turn })
}

/** topk's payload header: the value count as two little-endian u32 halves (protocol/src/codecs/topk.ts). */
const TOPK_HEADER_BYTES = 8

/**
 * `sparseBroadcast`, a slice at a time. A slice is a whole number of topk chunks and each
 * chunk's top k is its own, so the payload (one header, then the slices' chunks end to end),
 * the values applied and the residual are the whole call's, to the bit. `residual` is taken over
 * as in the whole call.
 */
export async function sparseBroadcastInSlices (mean: Float32Array, residual: Float32Array | null, slice = CLOSE_SLICE): Promise<SparseBroadcast> {
  if (slice % TOPK_CHUNK !== 0) throw new Error(`a sparse broadcast's slice must be whole topk chunks of ${TOPK_CHUNK} values, not ${slice}`)
  if (residual !== null && residual.length !== mean.length) throw new Error(`the broadcast residual holds ${residual.length} values, not the model's ${mean.length}`)
  const n = mean.length
  const encoded = new Uint8Array(encodedByteLength('topk', n))
  const header = new DataView(encoded.buffer, 0, TOPK_HEADER_BYTES)
  header.setUint32(0, n % 2 ** 32, true)
  header.setUint32(4, Math.floor(n / 2 ** 32), true)
  const applied = new Float32Array(n)
  const left = residual ?? new Float32Array(n)
  await inSlices(n, (a, b) => {
    const part = sparseBroadcast(mean.subarray(a, b), residual === null ? null : residual.subarray(a, b))
    // Every chunk before `a` is full, so its bytes start where a payload of `a` values ends.
    encoded.set(part.encoded.subarray(TOPK_HEADER_BYTES), a === 0 ? TOPK_HEADER_BYTES : encodedByteLength('topk', a))
    applied.set(part.applied, a)
    if (residual === null) left.set(part.residual, a)
  }, slice)
  return { encoded, applied, residual: left }
}

/** The sparse broadcast's residual blob (writeBroadcastResidual in sparse-broadcast.ts), copied a slice at a time; `residual` must not change until it resolves. */
export async function residualBytesInSlices (residual: Float32Array, slice = CLOSE_SLICE): Promise<Uint8Array> {
  // Checks the host is little-endian, so the F32 bytes are the values' own memory.
  float32ToTensor(new Float32Array(0), [0])
  const view = { dtype: 'F32' as const, shape: [residual.length], data: new Uint8Array(residual.buffer, residual.byteOffset, residual.byteLength) }
  return await encodeSafetensorsInSlices(new Map([['residual', view]]), undefined, { sliceBytes: 4 * slice, yieldTurn: turn })
}

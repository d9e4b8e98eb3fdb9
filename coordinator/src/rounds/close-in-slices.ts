// A round close's whole-model arithmetic a slice at a time, the event loop let through between
// slices: at 125M parameters the int8 encode of the round's mean alone held it for about 3 s,
// the outer step for as long again (docs/scaling.md). Every step here works value by value (or
// int8 block by block), so a slice's results are the whole call's, to the bit: what nodes
// compute in one call when they rebuild a base, the coordinator computes here in slices.
import { decodePseudoGradient, encodePseudoGradient, encodedByteLength } from '@barnraise/protocol'
import type { CodecName, LlamaConfig } from '@barnraise/protocol'
import { outerStep, storedCheckpointBytesInSlices, writeMomentumInSlices } from '@barnraise/trainer'

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

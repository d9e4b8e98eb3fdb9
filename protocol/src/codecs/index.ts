// Pseudo-gradient codecs: how a node's Δ = θ_base − θ_local travels in a report. Decoding
// checks the byte length, decodes in cache-sized chunks and refuses non-finite values and
// malformed bytes with a PseudoGradientError; the coordinator folds the decoded vector itself.
import { DECODE_CHUNK, PseudoGradientError } from './codec.ts'
import type { CodecName, PseudoGradientCodec } from './codec.ts'
import { fp16Codec } from './fp16.ts'
import { fp32Codec } from './fp32.ts'
import { int8Codec } from './int8.ts'
import { topkCodec } from './topk.ts'

export { PseudoGradientError } from './codec.ts'
export type { CodecName, PseudoGradientCodec, PseudoGradientErrorCode } from './codec.ts'
export { fp32Codec } from './fp32.ts'
export { fp16Codec } from './fp16.ts'
export { int8Codec, INT8_BLOCK } from './int8.ts'
export { topkCodec, TOPK_CHUNK, TOPK_DENSITY } from './topk.ts'
export { createFoldTarget, isFoldTarget } from './wasm/int8-simd.ts'

/** Every codec name, default first. */
export const CODEC_NAMES = ['int8', 'fp16', 'fp32', 'topk'] as const satisfies readonly CodecName[]
/** The codec a run uses unless its spec says otherwise. */
export const DEFAULT_CODEC: CodecName = 'int8'

const CHUNK = DECODE_CHUNK

const codecs: Record<CodecName, PseudoGradientCodec> = { fp32: fp32Codec, fp16: fp16Codec, int8: int8Codec, topk: topkCodec }

/** The codec called `name`, or ERR_UNKNOWN_CODEC. */
export function getCodec (name: CodecName): PseudoGradientCodec {
  if (typeof name !== 'string' || !Object.hasOwn(codecs, name)) {
    throw new PseudoGradientError('ERR_UNKNOWN_CODEC', `unknown pseudo-gradient codec ${JSON.stringify(name)}; expected one of ${CODEC_NAMES.join(', ')}`)
  }
  return codecs[name]
}

function requireLength (length: number): void {
  if (!Number.isSafeInteger(length) || length < 0) throw new PseudoGradientError('ERR_BAD_LENGTH', `element count ${length} is not a non-negative integer`)
}

/** Exact payload size, in bytes, of `length` values under `codec`. */
export function encodedByteLength (codec: CodecName, length: number): number {
  requireLength(length)
  return getCodec(codec).byteLength(length)
}

/** Encodes a pseudo-gradient; refuses NaN/Inf (and, for fp16, magnitudes above 65504). */
export function encodePseudoGradient (codec: CodecName, values: Float32Array): Uint8Array {
  return getCodec(codec).encode(values)
}

/** Calls `visit(chunk, start)` on successive decoded chunks after checking the byte length; refuses non-finite values. */
function forEachChunk (c: PseudoGradientCodec, bytes: Uint8Array, length: number, visit: (chunk: Float32Array, start: number) => void): void {
  requireLength(length)
  const expected = c.byteLength(length)
  if (bytes.byteLength !== expected) {
    throw new PseudoGradientError('ERR_BAD_LENGTH', `${c.name} payload for ${length} values must be ${expected} bytes, got ${bytes.byteLength}`)
  }
  c.checkPayload?.(bytes, length)
  const scratch = new Float32Array(Math.min(CHUNK, length))
  for (let start = 0; start < length; start += CHUNK) {
    const chunk = scratch.subarray(0, Math.min(CHUNK, length - start))
    c.decodeChunk(bytes, start, chunk)
    for (let i = 0; i < chunk.length; i++) {
      if (!Number.isFinite(chunk[i])) {
        throw new PseudoGradientError('ERR_NON_FINITE', `${c.name} payload element ${start + i} decodes to ${chunk[i]}; a report must hold finite values only`)
      }
    }
    visit(chunk, start)
  }
}

/** Decodes a payload of exactly `length` values; throws on a wrong byte length, malformed bytes or non-finite values. */
export function decodePseudoGradient (codec: CodecName, bytes: Uint8Array, length: number): Float32Array {
  requireLength(length)
  const out = new Float32Array(length)
  forEachChunk(getCodec(codec), bytes, length, (chunk, start) => { out.set(chunk, start) })
  return out
}

function requireByteLength (c: PseudoGradientCodec, bytes: Uint8Array, length: number): void {
  requireLength(length)
  const expected = c.byteLength(length)
  if (bytes.byteLength !== expected) {
    throw new PseudoGradientError('ERR_BAD_LENGTH', `${c.name} payload for ${length} values must be ${expected} bytes, got ${bytes.byteLength}`)
  }
  c.checkPayload?.(bytes, length)
}

/**
 * Checks a payload without keeping it decoded (byte length, malformed bytes, non-finite
 * values, as decoding does) and returns its L2 norm. Memory: one cache-sized chunk at most.
 */
export function scanPseudoGradient (codec: CodecName, bytes: Uint8Array, length: number): { norm: number } {
  const c = getCodec(codec)
  if (c.scan !== undefined) {
    requireByteLength(c, bytes, length)
    return { norm: Math.sqrt(c.scan(bytes, length)) }
  }
  let sumSquares = 0
  forEachChunk(c, bytes, length, (chunk) => { for (let i = 0; i < chunk.length; i++) sumSquares += chunk[i]! * chunk[i]! })
  return { norm: Math.sqrt(sumSquares) }
}

/**
 * Adds `weight` × the decoded payload to `sum` chunk by chunk, with no model-sized buffer;
 * the same floats as `sum[i] += Math.fround(Math.fround(weight) * decodePseudoGradient(…)[i])`
 * (see PseudoGradientCodec.fold). Checks as decoding does,
 * but a payload refused halfway has already added its first chunks: scan it first.
 */
export function foldPseudoGradient (codec: CodecName, bytes: Uint8Array, length: number, weight: number, sum: Float32Array): void {
  const c = getCodec(codec)
  if (sum.length !== length) throw new PseudoGradientError('ERR_BAD_LENGTH', `sum has ${sum.length} values, the payload ${length}`)
  if (c.fold !== undefined) {
    requireByteLength(c, bytes, length)
    c.fold(bytes, length, weight, sum)
    return
  }
  const w = Math.fround(weight)
  forEachChunk(c, bytes, length, (chunk, start) => { for (let i = 0; i < chunk.length; i++) sum[start + i]! += Math.fround(w * chunk[i]!) })
}

/** The documented per-element bound on |x − decode(encode(x))| for `values` under `codec`. */
export function pseudoGradientErrorBound (codec: CodecName, values: Float32Array): Float32Array {
  return getCodec(codec).errorBound(values)
}

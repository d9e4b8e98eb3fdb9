import { CodedError } from '../coded-error.ts'

/** Elements decoded per pass: a multiple of the int8 block (so every chunk starts on a block), small enough to stay in cache. */
export const DECODE_CHUNK = 64 * 1024
// The shape every pseudo-gradient codec has; index.ts adds length checks, chunking and the non-finite check on top.

/** Names of the pseudo-gradient encodings a report may use. */
export type CodecName = 'fp32' | 'fp16' | 'int8' | 'topk'

export type PseudoGradientErrorCode =
  | 'ERR_UNKNOWN_CODEC'
  | 'ERR_BAD_LENGTH'
  | 'ERR_NON_FINITE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_BAD_SCALE'
  | 'ERR_BAD_VALUE'

/** A pseudo-gradient that cannot be encoded or a payload that does not decode, with a code a caller can switch on. */
export class PseudoGradientError extends CodedError<PseudoGradientErrorCode> {}

export interface PseudoGradientCodec {
  readonly name: CodecName
  /** Exact payload size for `length` values. */
  byteLength: (length: number) => number
  /** Encodes finite values; throws PseudoGradientError on values it cannot represent. */
  encode: (values: Float32Array) => Uint8Array
  /**
   * Decodes elements [start, start + out.length) of a payload whose byte length was already
   * checked; `start` is a multiple of every codec's block (int8's 256 values, topk's 4,096). Throws on structurally bad payload bytes.
   * Non-finite results are left for the caller to refuse.
   */
  decodeChunk: (bytes: Uint8Array, start: number, out: Float32Array) => void
  /** Checks what a byte length alone cannot (topk's header names its element count); throws ERR_BAD_LENGTH. */
  checkPayload?: (bytes: Uint8Array, length: number) => void
  /** Largest |x - decode(encode(x))| for each element of `values` (a documented guarantee, tested). */
  errorBound: (values: Float32Array) => Float32Array
  /**
   * Optional fast paths over a length-checked payload, reading its bytes directly: `scan`
   * refuses what decoding would (malformed bytes, non-finite results) and returns Σx² in
   * float64; `fold` adds weight·x for every decoded x to `sum`, exactly as decoding and then
   * `sum[i] += Math.fround(Math.fround(weight) * x[i])` would: float32 arithmetic throughout
   * (a float64 product or sum rounded once to float32 is the float32 one), which SIMD kernels
   * reproduce to the bit.
   */
  scan?: (bytes: Uint8Array, length: number) => number
  fold?: (bytes: Uint8Array, length: number, weight: number, sum: Float32Array) => void
}

/** The first non-finite element's index, or -1. */
export function firstNonFinite (values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) return i
  }
  return -1
}

/** Throws ERR_NON_FINITE naming the first NaN/Inf element. */
export function requireFinite (values: Float32Array): void {
  const i = firstNonFinite(values)
  if (i >= 0) throw new PseudoGradientError('ERR_NON_FINITE', `pseudo-gradient element ${i} is ${values[i]}; a report must hold finite values only`)
}

// fp16: IEEE binary16, round-to-nearest-even; 2 bytes per value. Values beyond ±65504 would
// become Inf, so encoding refuses them instead of silently corrupting the report.
import { FLOAT16_MAX, encodeFloat16Array, float16Lookup } from '../half-precision.ts'
import { PseudoGradientError, requireFinite } from './codec.ts'
import type { PseudoGradientCodec } from './codec.ts'

/** Half-precision payload: relative error ≤ 2^-11 in the normal range, absolute ≤ 2^-25 below 2^-14. */
export const fp16Codec: PseudoGradientCodec = {
  name: 'fp16',
  byteLength: (length) => length * 2,
  encode (values) {
    requireFinite(values)
    for (let i = 0; i < values.length; i++) {
      if (Math.abs(values[i]) > FLOAT16_MAX) {
        throw new PseudoGradientError('ERR_OUT_OF_RANGE', `pseudo-gradient element ${i} is ${values[i]}, beyond fp16's ±${FLOAT16_MAX}; use the int8 or fp32 codec`)
      }
    }
    const bits = new Uint16Array(values.length)
    encodeFloat16Array(values, bits)
    return new Uint8Array(bits.buffer)
  },
  decodeChunk (bytes, start, out) {
    // Bytes may sit at any offset, so each value is assembled from its two bytes, then looked up.
    const t = float16Lookup()
    let at = start * 2
    for (let i = 0; i < out.length; i++, at += 2) out[i] = t[bytes[at] | (bytes[at + 1] << 8)]
  },
  errorBound (values) {
    const out = new Float32Array(values.length)
    for (let i = 0; i < values.length; i++) out[i] = Math.max(Math.abs(values[i]) * 2 ** -11, 2 ** -25)
    return out
  },
  scan (bytes, length) {
    const t = float16Lookup()
    let sumSquares = 0
    for (let i = 0, at = 0; i < length; i++, at += 2) {
      const v = t[bytes[at]! | (bytes[at + 1]! << 8)]!
      if (v - v !== 0) throw new PseudoGradientError('ERR_NON_FINITE', `fp16 payload element ${i} decodes to ${v}; a report must hold finite values only`)
      sumSquares += v * v
    }
    return sumSquares
  },
  fold (bytes, length, weight, sum) {
    const t = float16Lookup()
    const w = Math.fround(weight)
    for (let i = 0, at = 0; i < length; i++, at += 2) sum[i]! += Math.fround(w * t[bytes[at]! | (bytes[at + 1]! << 8)]!)
  }
}

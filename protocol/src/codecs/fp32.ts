// fp32: raw little-endian float32, lossless; 4 bytes per value.
import { PseudoGradientError, requireFinite } from './codec.ts'
import type { PseudoGradientCodec } from './codec.ts'

/** Lossless float32 payload. */
export const fp32Codec: PseudoGradientCodec = {
  name: 'fp32',
  byteLength: (length) => length * 4,
  encode (values) {
    requireFinite(values)
    return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength))
  },
  decodeChunk (bytes, start, out) {
    // A byte copy into out's own (aligned) buffer sidesteps the payload's alignment.
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes.subarray(start * 4, (start + out.length) * 4))
  },
  errorBound: (values) => new Float32Array(values.length),
  scan (bytes, length) {
    const x = aligned(bytes, length)
    let sumSquares = 0
    for (let i = 0; i < length; i++) {
      const v = x[i]!
      if (v - v !== 0) throw new PseudoGradientError('ERR_NON_FINITE', `fp32 payload element ${i} decodes to ${v}; a report must hold finite values only`)
      sumSquares += v * v
    }
    return sumSquares
  },
  fold (bytes, length, weight, sum) {
    const x = aligned(bytes, length)
    const w = Math.fround(weight)
    for (let i = 0; i < length; i++) sum[i]! += Math.fround(w * x[i]!)
  }
}

/** The payload as float32s: a view when its offset allows one, else one copy. */
function aligned (bytes: Uint8Array, length: number): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, length)
  const copy = new Float32Array(length)
  new Uint8Array(copy.buffer).set(bytes.subarray(0, length * 4))
  return copy
}

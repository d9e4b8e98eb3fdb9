// fp32: raw little-endian float32, lossless; 4 bytes per value.
import { requireFinite } from './codec.ts'
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
  errorBound: (values) => new Float32Array(values.length)
}

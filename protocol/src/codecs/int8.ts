// int8 blockwise absmax, the default codec. Values go in blocks of 256; each block is written
// as its float32 LE scale (absmax/127) followed by one int8 per value, q = round(x/scale)
// (ties to even) clamped to [-127, 127]. Interleaving scale and values keeps every block
// self-contained, so any run of whole blocks decodes on its own. Size: n + 4·ceil(n/256) bytes.
// Error: |x − q·scale| ≤ scale/2 = absmax_block/254 (plus float32 rounding of the product).
import { DECODE_CHUNK, PseudoGradientError, requireFinite } from './codec.ts'
import type { PseudoGradientCodec } from './codec.ts'
import { foldInt8Blocks, scanInt8Blocks } from './wasm/int8-simd.ts'

export const INT8_BLOCK = 256
const BLOCK_BYTES = 4 + INT8_BLOCK

/** Round half to even, as torch.round does: Math.round alone biases ties upward. */
function roundHalfEven (y: number): number {
  const r = Math.round(y)
  return r - y === 0.5 && (r & 1) !== 0 ? r - 1 : r
}

function blockScale (values: Float32Array, from: number, to: number): number {
  let absmax = 0
  for (let i = from; i < to; i++) {
    const a = Math.abs(values[i])
    if (a > absmax) absmax = a
  }
  return Math.fround(absmax / 127)
}

/**
 * Throws the error decoding would for a block known to hold a -128 or a value that overflows
 * float32. Decoding refuses a -128 or a bad scale anywhere in its pass (DECODE_CHUNK values)
 * before it looks for non-finite values, so an overflow is reported only once the rest of that
 * pass has neither: the scan and the decoder then name the same code.
 */
function failBlock (view: DataView, q: Int8Array, at: number, from: number, count: number, scale: number, length: number): never {
  for (let j = at + 4; j < at + 4 + count; j++) {
    if (q[j] === -128) throw new PseudoGradientError('ERR_BAD_VALUE', `int8 element ${from + j - at - 4} is -128; encoders clamp to [-127, 127]`)
  }
  const passEnd = Math.min(length, (Math.floor(from / DECODE_CHUNK) + 1) * DECODE_CHUNK)
  for (let f = from + INT8_BLOCK, a = at + BLOCK_BYTES; f < passEnd; f += INT8_BLOCK, a += BLOCK_BYTES) {
    const s = view.getFloat32(a, true)
    if (!(s >= 0) || s === Number.POSITIVE_INFINITY) throw new PseudoGradientError('ERR_BAD_SCALE', `int8 block ${f / INT8_BLOCK} has scale ${s}; scales must be finite and non-negative`)
    for (let j = a + 4, end = a + 4 + Math.min(INT8_BLOCK, length - f); j < end; j++) {
      if (q[j] === -128) throw new PseudoGradientError('ERR_BAD_VALUE', `int8 element ${f + j - a - 4} is -128; encoders clamp to [-127, 127]`)
    }
  }
  for (let j = at + 4; j < at + 4 + count; j++) {
    // As decoding rounds v·scale to float32 (which overflows for scales near float32's limit).
    const x = Math.fround(q[j]! * scale)
    if (x - x !== 0) throw new PseudoGradientError('ERR_NON_FINITE', `int8 element ${from + j - at - 4} decodes to ${x}; a report must hold finite values only`)
  }
  throw new Error('int8 scan: a block flagged bad has no bad value')
}

/** Blockwise absmax int8 payload with one float32 scale per 256 values. */
export const int8Codec: PseudoGradientCodec = {
  name: 'int8',
  byteLength: (length) => length + 4 * Math.ceil(length / INT8_BLOCK),
  encode (values) {
    requireFinite(values)
    const n = values.length
    const out = new Uint8Array(int8Codec.byteLength(n))
    const view = new DataView(out.buffer)
    const q = new Int8Array(out.buffer)
    for (let from = 0, at = 0; from < n; from += INT8_BLOCK, at += BLOCK_BYTES) {
      const to = Math.min(from + INT8_BLOCK, n)
      const scale = blockScale(values, from, to)
      view.setFloat32(at, scale, true)
      // A scale that underflows to 0 (absmax below ~2^-142) leaves the block all zeros.
      if (scale === 0) continue
      for (let i = from, j = at + 4; i < to; i++, j++) {
        const r = roundHalfEven(values[i] / scale)
        q[j] = r > 127 ? 127 : r < -127 ? -127 : r
      }
    }
    return out
  },
  decodeChunk (bytes, start, out) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const block0 = start / INT8_BLOCK
    for (let b = 0; b * INT8_BLOCK < out.length; b++) {
      const at = (block0 + b) * BLOCK_BYTES
      const scale = view.getFloat32(at, true)
      if (!(scale >= 0) || scale === Number.POSITIVE_INFINITY) {
        throw new PseudoGradientError('ERR_BAD_SCALE', `int8 block ${block0 + b} has scale ${scale}; scales must be finite and non-negative`)
      }
      const from = b * INT8_BLOCK
      const to = Math.min(from + INT8_BLOCK, out.length)
      for (let i = from, j = at + 4; i < to; i++, j++) {
        const v = (bytes[j] << 24) >> 24
        if (v === -128) throw new PseudoGradientError('ERR_BAD_VALUE', `int8 element ${start + i} is -128; encoders clamp to [-127, 127]`)
        out[i] = v * scale
      }
    }
  },
  scan (bytes, length) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const full = Math.floor(length / INT8_BLOCK)
    // Whole blocks' Σq², max |q| and -128 flags from the SIMD kernel, the rest in JS.
    const stats = scanInt8Blocks(bytes, full)
    let sumSquares = 0
    for (let b = 0, from = 0, at = 0; from < length; b++, from += INT8_BLOCK, at += BLOCK_BYTES) {
      const scale = view.getFloat32(at, true)
      if (!(scale >= 0) || scale === Number.POSITIVE_INFINITY) {
        throw new PseudoGradientError('ERR_BAD_SCALE', `int8 block ${b} has scale ${scale}; scales must be finite and non-negative`)
      }
      const count = Math.min(INT8_BLOCK, length - from)
      let squares: number, maxAbs: number, minus128: number
      if (stats !== null && b < full) {
        squares = stats[3 * b]!; maxAbs = stats[3 * b + 1]!; minus128 = stats[3 * b + 2]!
      } else {
        squares = 0; maxAbs = 0; minus128 = 0
        for (let j = at + 4; j < at + 4 + count; j++) {
          const v = q[j]!
          squares += v * v
          if (v === -128) minus128 = 1
          else if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v)
        }
      }
      // A bad block is walked value by value, so the error names the first bad element.
      if (minus128 !== 0 || !Number.isFinite(Math.fround(maxAbs * scale))) failBlock(view, q, at, from, count, scale, length)
      // Σx² as Σ scale²·Σq² per block: exact integers inside a block (x = q·scale to within float32 rounding).
      sumSquares += scale * scale * squares
    }
    return sumSquares
  },
  fold (bytes, length, weight, sum) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const q = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const full = Math.floor(length / INT8_BLOCK)
    // The SIMD kernel takes the whole blocks when `sum` lives in its memory; JS the rest.
    const w = Math.fround(weight)
    const start = foldInt8Blocks(bytes, full, w, sum) ? full * INT8_BLOCK : 0
    for (let from = start, at = start / INT8_BLOCK * BLOCK_BYTES; from < length; from += INT8_BLOCK, at += BLOCK_BYTES) {
      const scale = view.getFloat32(at, true)
      if (scale === 0) continue
      const to = Math.min(from + INT8_BLOCK, length)
      for (let i = from, j = at + 4; i < to; i++, j++) sum[i]! += Math.fround(w * Math.fround(q[j]! * scale))
    }
  },
  errorBound (values) {
    const out = new Float32Array(values.length)
    for (let from = 0; from < values.length; from += INT8_BLOCK) {
      const to = Math.min(from + INT8_BLOCK, values.length)
      const scale = blockScale(values, from, to)
      // scale/2 from rounding q, plus float32 rounding of q·scale (relative 2^-24, or one
      // subnormal step 2^-149 for tiny scales); a zeroed block is off by at most its absmax.
      const bound = scale === 0 ? 127 * 2 ** -149 : scale / 2 + 128 * scale * 2 ** -24 + 2 ** -149
      out.fill(bound, from, to)
    }
    return out
  }
}

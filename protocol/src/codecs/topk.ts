// Sparse top-k with 4-bit values, the codec for slow links (SparseLoCo-style: chunked top-k
// plus low-bit values; the error the codec drops is kept by the sender as error feedback,
// see node-agent/src/error-feedback.ts). Layout, little-endian:
//   header  u32 n mod 2^32, u32 floor(n / 2^32)         (8 bytes; decoding checks it is n)
//   then per chunk of m = min(4096, rest) values, keeping k = ceil(m / 64) of them:
//     f32 scale = absmax of the kept values / 7
//     k indices within the chunk, strictly increasing, 12 bits each, two per 3 bytes
//       (a, b → a & 0xff, (a >> 8) | (b & 0xf) << 4, b >> 4; an odd last index takes 2 bytes)
//     k values q ∈ [-7, 7] as 4-bit two's complement, two per byte, low nibble first
//   Padding bits are zero. A full chunk is 4 + 96 + 32 = 132 bytes for 4096 values (0.032
//   bytes a value, 124× smaller than fp32). Kept values: x ≈ q·scale with |error| ≤ scale/2;
//   dropped values decode to 0. Top-k picks the largest |x|, ties to the lower index.
import { PseudoGradientError, requireFinite } from './codec.ts'
import type { PseudoGradientCodec } from './codec.ts'

export const TOPK_CHUNK = 4096
/** One value kept out of this many. */
export const TOPK_DENSITY = 64
const HEADER = 8
const LEVELS = 7

function keptIn (m: number): number {
  return Math.ceil(m / TOPK_DENSITY)
}

function chunkBytes (m: number): number {
  const k = keptIn(m)
  return 4 + Math.ceil(k * 3 / 2) + Math.ceil(k / 2)
}

const FULL_CHUNK_BYTES = chunkBytes(TOPK_CHUNK)

/** Round half to even, as torch.round does. */
function roundHalfEven (y: number): number {
  const r = Math.round(y)
  return r - y === 0.5 && (r & 1) !== 0 ? r - 1 : r
}

/** Byte offset of chunk `c`: every chunk but the last is full. */
function chunkOffset (c: number): number {
  return HEADER + c * FULL_CHUNK_BYTES
}

/** The k-th largest of `a[0..n)` (k ≥ 1), reordering `a`: quickselect, median-of-three pivots. */
function kthLargest (a: Float32Array, n: number, k: number): number {
  let lo = 0
  let hi = n - 1
  const target = k - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    // Median of three as the pivot keeps sorted and reversed chunks linear.
    const x = a[lo]!; const y = a[mid]!; const z = a[hi]!
    const pivot = x > y ? (y > z ? y : (x > z ? z : x)) : (x > z ? x : (y > z ? z : y))
    let i = lo
    let j = hi
    while (i <= j) {
      while (a[i]! > pivot) i++
      while (a[j]! < pivot) j--
      if (i <= j) { const t = a[i]!; a[i] = a[j]!; a[j] = t; i++; j-- }
    }
    if (target <= j) hi = j
    else if (target >= i) lo = i
    else return a[target]!
  }
  return a[lo]!
}

/** The indices (ascending) of the `k` largest |values[from..from+m)|, ties to the lower index. */
function topIndices (values: Float32Array, from: number, m: number, k: number, scratch: Float32Array, out: Uint16Array): void {
  for (let i = 0; i < m; i++) scratch[i] = Math.abs(values[from + i]!)
  const threshold = kthLargest(scratch, m, k)
  let above = 0
  for (let i = 0; i < m; i++) if (Math.abs(values[from + i]!) > threshold) above++
  let ties = k - above
  let n = 0
  for (let i = 0; i < m && n < k; i++) {
    const a = Math.abs(values[from + i]!)
    if (a > threshold || (a === threshold && ties-- > 0)) out[n++] = i
  }
}

/** Picks a chunk's kept indices into `picked` and returns its scale (absmax of the kept values / 7). */
function pickChunk (values: Float32Array, from: number, m: number, k: number, scratch: Float32Array, picked: Uint16Array): number {
  topIndices(values, from, m, k, scratch, picked)
  let absmax = 0
  for (let j = 0; j < k; j++) absmax = Math.max(absmax, Math.abs(values[from + picked[j]!]!))
  return Math.fround(absmax / LEVELS)
}

function readIndex (bytes: Uint8Array, at: number, j: number): number {
  const p = at + (j >> 1) * 3
  return (j & 1) === 0 ? bytes[p]! | ((bytes[p + 1]! & 0x0f) << 8) : (bytes[p + 1]! >> 4) | (bytes[p + 2]! << 4)
}

function readValue (bytes: Uint8Array, at: number, j: number): number {
  const nibble = (bytes[at + (j >> 1)]! >> ((j & 1) << 2)) & 0x0f
  return (nibble << 28) >> 28
}

/** Checks a chunk's structure (scale, index order, padding, value range) and returns its scale. */
function checkChunk (bytes: Uint8Array, view: DataView, c: number, m: number): number {
  const at = chunkOffset(c)
  const k = keptIn(m)
  const scale = view.getFloat32(at, true)
  if (!(scale >= 0) || scale === Number.POSITIVE_INFINITY) {
    throw new PseudoGradientError('ERR_BAD_SCALE', `topk chunk ${c} has scale ${scale}; scales must be finite and non-negative`)
  }
  const idx = at + 4
  const vals = idx + Math.ceil(k * 3 / 2)
  let previous = -1
  for (let j = 0; j < k; j++) {
    const i = readIndex(bytes, idx, j)
    if (i <= previous || i >= m) {
      throw new PseudoGradientError('ERR_BAD_VALUE', `topk chunk ${c} index ${j} is ${i}; indices must increase and stay below the chunk's ${m} values`)
    }
    previous = i
    if (readValue(bytes, vals, j) === -8) throw new PseudoGradientError('ERR_BAD_VALUE', `topk chunk ${c} value ${j} is -8; encoders clamp to [-7, 7]`)
  }
  if ((k & 1) === 1 && ((bytes[idx + (k >> 1) * 3 + 1]! & 0xf0) !== 0 || (bytes[vals + (k >> 1)]! & 0xf0) !== 0)) {
    throw new PseudoGradientError('ERR_BAD_VALUE', `topk chunk ${c} has non-zero padding bits`)
  }
  return scale
}

function checkHeader (view: DataView, length: number): void {
  const n = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32
  if (n !== length) throw new PseudoGradientError('ERR_BAD_LENGTH', `topk payload says it holds ${n} values, not ${length}`)
}

function viewOf (bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Chunked top-k (1 in 64) with 4-bit values and one float32 scale per 4,096 values. */
export const topkCodec: PseudoGradientCodec = {
  name: 'topk',
  byteLength (length) {
    const full = Math.floor(length / TOPK_CHUNK)
    const rest = length - full * TOPK_CHUNK
    return HEADER + full * FULL_CHUNK_BYTES + (rest > 0 ? chunkBytes(rest) : 0)
  },
  encode (values) {
    requireFinite(values)
    const n = values.length
    const out = new Uint8Array(topkCodec.byteLength(n))
    const view = viewOf(out)
    view.setUint32(0, n % 2 ** 32, true)
    view.setUint32(4, Math.floor(n / 2 ** 32), true)
    const scratch = new Float32Array(Math.min(TOPK_CHUNK, n))
    const picked = new Uint16Array(keptIn(TOPK_CHUNK))
    for (let c = 0, from = 0; from < n; c++, from += TOPK_CHUNK) {
      const m = Math.min(TOPK_CHUNK, n - from)
      const k = keptIn(m)
      const scale = pickChunk(values, from, m, k, scratch, picked)
      const at = chunkOffset(c)
      view.setFloat32(at, scale, true)
      const idx = at + 4
      const vals = idx + Math.ceil(k * 3 / 2)
      for (let j = 0; j < k; j++) {
        const i = picked[j]!
        const p = idx + (j >> 1) * 3
        if ((j & 1) === 0) { out[p] = i & 0xff; out[p + 1] = i >> 8 } else { out[p + 1]! |= (i & 0x0f) << 4; out[p + 2] = i >> 4 }
        // A scale that underflows to 0 leaves the kept values at 0 (they were below ~2^-146).
        const r = scale === 0 ? 0 : roundHalfEven(values[from + i]! / scale)
        const q = r > LEVELS ? LEVELS : r < -LEVELS ? -LEVELS : r
        out[vals + (j >> 1)]! |= (q & 0x0f) << ((j & 1) << 2)
      }
    }
    return out
  },
  decodeChunk (bytes, start, out) {
    const view = viewOf(bytes)
    // checkPayload has matched the header against the caller's length.
    const total = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32
    out.fill(0)
    for (let from = 0; from < out.length; from += TOPK_CHUNK) {
      const c = (start + from) / TOPK_CHUNK
      const m = Math.min(TOPK_CHUNK, total - start - from)
      const scale = checkChunk(bytes, view, c, m)
      const k = keptIn(m)
      const idx = chunkOffset(c) + 4
      const vals = idx + Math.ceil(k * 3 / 2)
      for (let j = 0; j < k; j++) out[from + readIndex(bytes, idx, j)] = readValue(bytes, vals, j) * scale
    }
  },
  checkPayload (bytes, length) {
    checkHeader(viewOf(bytes), length)
  },
  scan (bytes, length) {
    const view = viewOf(bytes)
    checkHeader(view, length)
    let sumSquares = 0
    for (let c = 0, from = 0; from < length; c++, from += TOPK_CHUNK) {
      const m = Math.min(TOPK_CHUNK, length - from)
      const scale = checkChunk(bytes, view, c, m)
      const k = keptIn(m)
      const vals = chunkOffset(c) + 4 + Math.ceil(k * 3 / 2)
      for (let j = 0; j < k; j++) {
        const x = Math.fround(readValue(bytes, vals, j) * scale)
        if (x - x !== 0) throw new PseudoGradientError('ERR_NON_FINITE', `topk chunk ${c} value ${j} decodes to ${x}; a report must hold finite values only`)
        sumSquares += x * x
      }
    }
    return sumSquares
  },
  fold (bytes, length, weight, sum) {
    const view = viewOf(bytes)
    const w = Math.fround(weight)
    for (let c = 0, from = 0; from < length; c++, from += TOPK_CHUNK) {
      const m = Math.min(TOPK_CHUNK, length - from)
      const k = keptIn(m)
      const at = chunkOffset(c)
      const scale = view.getFloat32(at, true)
      if (scale === 0) continue
      const idx = at + 4
      const vals = idx + Math.ceil(k * 3 / 2)
      for (let j = 0; j < k; j++) sum[from + readIndex(bytes, idx, j)]! += Math.fround(w * Math.fround(readValue(bytes, vals, j) * scale))
    }
  },
  errorBound (values) {
    const n = values.length
    const out = new Float32Array(n)
    const scratch = new Float32Array(Math.min(TOPK_CHUNK, n))
    const picked = new Uint16Array(keptIn(TOPK_CHUNK))
    for (let from = 0; from < n; from += TOPK_CHUNK) {
      const m = Math.min(TOPK_CHUNK, n - from)
      const k = keptIn(m)
      const scale = pickChunk(values, from, m, k, scratch, picked)
      // Dropped values are off by themselves; kept ones by half a step plus float32 rounding of
      // the scale and of q·scale, which among subnormals is up to 2^-149 a level (or all of a
      // value whose scale underflowed to 0).
      for (let i = 0; i < m; i++) out[from + i] = Math.abs(values[from + i]!)
      const kept = scale === 0 ? LEVELS * 2 ** -149 : scale / 2 + 8 * scale * 2 ** -24 + (LEVELS + 1) * 2 ** -149
      for (let j = 0; j < k; j++) out[from + picked[j]!] = kept
    }
    return out
  }
}

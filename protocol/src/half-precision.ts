// IEEE 754 binary16 (fp16) and bfloat16 conversions, round-to-nearest-even, done on the bit
// patterns: Node 22 has no Float16Array, and Math.fround-style tricks round twice.
// Typed-array views assume a little-endian host (x86-64, arm64); safetensors.ts checks that.

const scratchF32 = new Float32Array(1)
const scratchU32 = new Uint32Array(scratchF32.buffer)

/** Largest finite fp16 value. */
export const FLOAT16_MAX = 65504

/** Rounds a float32 bit pattern to the nearest fp16 bit pattern (ties to even; NaN stays NaN, overflow becomes ±Inf). */
function float32BitsToFloat16Bits (bits: number): number {
  const sign = (bits >>> 16) & 0x8000
  const exp = (bits >>> 23) & 0xff
  const mant = bits & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    // fp16 subnormal: value / 2^-24 = (1.mant) * 2^(exp-126), i.e. the 24-bit significand >> (14 - e)
    const shift = 14 - e
    if (shift > 24) return sign
    const full = mant | 0x800000
    let q = full >>> shift
    const rem = full & ((1 << shift) - 1)
    const half = 1 << (shift - 1)
    if (rem > half || (rem === half && (q & 1) === 1)) q++
    return sign | q // q may carry into 0x400, which is exactly the smallest normal
  }
  let q = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1)) q++ // a carry may reach 0x7c00 = Inf, as RNE should
  return sign | q
}

/** The fp16 bit pattern nearest to `x` (ties to even). */
export function float32ToFloat16Bits (x: number): number {
  scratchF32[0] = x
  return float32BitsToFloat16Bits(scratchU32[0])
}

/** The value of an fp16 bit pattern. */
export function float16BitsToFloat32 (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant !== 0 ? Number.NaN : sign * Number.POSITIVE_INFINITY
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

/** The bfloat16 bit pattern nearest to `x` (ties to even; NaN stays a quiet NaN). */
export function float32ToBfloat16Bits (x: number): number {
  scratchF32[0] = x
  return float32BitsToBfloat16Bits(scratchU32[0])
}

function float32BitsToBfloat16Bits (bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) & 0x8000) | 0x7fc0
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff
}

/** The value of a bfloat16 bit pattern. */
export function bfloat16BitsToFloat32 (b: number): number {
  scratchU32[0] = (b & 0xffff) << 16
  return scratchF32[0]
}

let float16Table: Float32Array | undefined

/** All 65536 fp16 values, built on first use: decoding is then one lookup per element. */
export function float16Lookup (): Float32Array {
  if (float16Table === undefined) {
    float16Table = new Float32Array(65536)
    for (let h = 0; h < 65536; h++) float16Table[h] = float16BitsToFloat32(h)
  }
  return float16Table
}

/** Encodes every element of `src` as fp16 bits into `dst` (same length). */
export function encodeFloat16Array (src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length)
  for (let i = 0; i < src.length; i++) dst[i] = float32BitsToFloat16Bits(bits[i])
}

/** Decodes fp16 bits from `src` into `dst` (same length). */
export function decodeFloat16Array (src: Uint16Array, dst: Float32Array): void {
  const table = float16Lookup()
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]]
}

/** Encodes every element of `src` as bfloat16 bits into `dst` (same length). */
export function encodeBfloat16Array (src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length)
  for (let i = 0; i < src.length; i++) dst[i] = float32BitsToBfloat16Bits(bits[i])
}

/** Decodes bfloat16 bits from `src` into `dst` (same length). */
export function decodeBfloat16Array (src: Uint16Array, dst: Float32Array): void {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length)
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16
}

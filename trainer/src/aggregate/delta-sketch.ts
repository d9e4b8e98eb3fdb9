/**
 * A fixed-size count sketch of a pseudo-gradient: each coordinate adds ±value to one of
 * `width` buckets, chosen by a hash of its index that is the same for every report of every
 * run. Inner products (so cosines) of sketches estimate those of the full vectors with an
 * error near 1/√width, which is enough to spot a delta replayed from an earlier round without
 * keeping earlier rounds' deltas.
 */
export type DeltaSketch = Float32Array

export const SKETCH_WIDTH = 4096

/** Bucket and sign of coordinate `i` (a multiplicative hash; the sign from a higher bit). */
function slot (i: number, width: number): { bucket: number, sign: number } {
  const h = Math.imul(i ^ (i >>> 16), 0x45d9f3b) >>> 0
  const g = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0
  return { bucket: g % width, sign: (g & 0x80000000) !== 0 ? -1 : 1 }
}

/** The sketch of `delta`. */
export function sketchDelta (delta: Float32Array, width = SKETCH_WIDTH): DeltaSketch {
  const out = new Float64Array(width)
  for (let i = 0; i < delta.length; i++) {
    const { bucket, sign } = slot(i, width)
    out[bucket]! += sign * delta[i]!
  }
  return Float32Array.from(out)
}

/** A sketch as bytes to store (little-endian float32s, as every platform Barnraise runs on keeps them). */
export function sketchToBytes (sketch: DeltaSketch): Uint8Array {
  return new Uint8Array(sketch.buffer.slice(sketch.byteOffset, sketch.byteOffset + sketch.byteLength))
}

/** A stored sketch; null when the bytes are not one (a truncated or foreign value). */
export function sketchFromBytes (bytes: Uint8Array, width = SKETCH_WIDTH): DeltaSketch | null {
  if (bytes.byteLength !== width * 4) return null
  const sketch = new Float32Array(new Uint8Array(bytes).buffer)
  return sketch.every(Number.isFinite) ? sketch : null
}

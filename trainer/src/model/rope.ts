// Rotary position embeddings, Hugging Face's rotate_half convention: in each head, element i
// pairs with element i + headDim/2 (not its neighbour), rotated by angle pos · θ^(−2i/headDim).

export interface RopeTable { seqLen: number, half: number, cos: Float64Array, sin: Float64Array }

/** cos/sin of every (position, frequency) pair for positions 0..seqLen−1. */
export function ropeTable (seqLen: number, headDim: number, theta: number): RopeTable {
  const half = headDim / 2
  const cos = new Float64Array(seqLen * half)
  const sin = new Float64Array(seqLen * half)
  for (let i = 0; i < half; i++) {
    const invFreq = 1 / theta ** (2 * i / headDim)
    for (let t = 0; t < seqLen; t++) {
      const angle = t * invFreq
      cos[t * half + i] = Math.cos(angle)
      sin[t * half + i] = Math.sin(angle)
    }
  }
  return { seqLen, half, cos, sin }
}

/**
 * Rotates, in place, every head of x [batch·seqLen, heads·headDim] by its row's position.
 * `inverse` rotates by the opposite angle: the transpose, which is the backward pass.
 */
export function applyRope (x: Float32Array, rows: number, heads: number, table: RopeTable, inverse: boolean): void {
  const { seqLen, half, cos, sin } = table
  const headDim = 2 * half
  const width = heads * headDim
  const sign = inverse ? -1 : 1
  for (let r = 0; r < rows; r++) {
    const t = (r % seqLen) * half
    for (let h = 0; h < heads; h++) {
      const o = r * width + h * headDim
      for (let i = 0; i < half; i++) {
        const c = cos[t + i]
        const s = sign * sin[t + i]
        const a = x[o + i]
        const b = x[o + i + half]
        x[o + i] = a * c - b * s
        x[o + i + half] = b * c + a * s
      }
    }
  }
}

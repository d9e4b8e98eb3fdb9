// RMSNorm as Hugging Face Llama: y = x · rsqrt(mean(x²) + eps) · w, per row.

/** y[r,:] = x[r,:] · rstd[r] · w; stores rstd per row (for backward) when `rstd` is given. */
export function rmsnormForward (
  x: Float32Array, w: Float32Array, y: Float32Array, rstd: Float32Array | null,
  rows: number, dim: number, eps: number
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim
    let ss = 0
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i]
    const s = 1 / Math.sqrt(ss / dim + eps)
    if (rstd !== null) rstd[r] = s
    for (let i = 0; i < dim; i++) y[o + i] = x[o + i] * s * w[i]
  }
}

/**
 * Backward of rmsnormForward: dx += ∂L/∂x and dw += ∂L/∂w (both accumulated, since the
 * residual stream and tied weights gather gradient from several places).
 * With g = dy·w: dx = s·g − s³/dim · x · Σ(g·x).
 */
export function rmsnormBackward (
  dy: Float32Array, x: Float32Array, w: Float32Array, rstd: Float32Array,
  dx: Float32Array, dw: Float32Array, rows: number, dim: number
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim
    const s = rstd[r]
    let dot = 0
    for (let i = 0; i < dim; i++) {
      const gi = dy[o + i]
      dot += gi * w[i] * x[o + i]
      dw[i] += gi * x[o + i] * s
    }
    const c = s * s * s * dot / dim
    for (let i = 0; i < dim; i++) dx[o + i] += s * dy[o + i] * w[i] - c * x[o + i]
  }
}

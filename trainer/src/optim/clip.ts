// Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_ (norm_type 2): scale by
// min(1, maxNorm / (norm + 1e-6)).

/** Clips `grads` in place to L2 norm `maxNorm` and returns the norm before clipping. A NaN/Inf norm is returned with `grads` untouched, so the caller can skip the step. */
export function clipGradNorm (grads: Float32Array, maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`maxNorm ${maxNorm} must be positive`)
  let sumSq = 0
  for (let i = 0; i < grads.length; i++) sumSq += grads[i] * grads[i]
  const norm = Math.sqrt(sumSq)
  if (!Number.isFinite(norm)) return norm
  const coef = maxNorm / (norm + 1e-6)
  if (coef < 1) {
    for (let i = 0; i < grads.length; i++) grads[i] *= coef
  }
  return norm
}

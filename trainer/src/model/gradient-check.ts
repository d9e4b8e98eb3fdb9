// Finite-difference check of lossAndGrad, independent of any reference implementation: used by
// the tests and by `barnraise-agent selftest` on the machine that will train.
import { parseLlamaConfig } from '@barnraise/protocol'
import type { LlamaConfig } from '@barnraise/protocol'
import { evaluateLoss } from './llama.ts'
import { initParams } from './params.ts'
import type { ParamSet } from './params.ts'
import { uniformGenerator } from './random.ts'

// Central-difference step: truncation error grows as H², float32 rounding of the loss as 1/H.
// On the models below 5e-3 balances them: the worst mismatch seen is ≈ 8e-4 of the derivative,
// against a 5e-3 bar, while a gradient 5% off in one tensor fails.
const DEFAULT_STEP = 5e-3
const DEFAULT_RTOL = 5e-3
const DEFAULT_ATOL = 5e-5

/** Small models that together cover grouped-query, multi-head and multi-query attention, tied and untied heads, and head_dim ≠ hidden/heads. */
export const gradientCheckConfigs: ReadonlyArray<{ name: string, config: LlamaConfig }> = [
  { name: 'grouped-query, untied', config: parseLlamaConfig({ vocab_size: 19, hidden_size: 12, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 6, rms_norm_eps: 1e-5, rope_theta: 50, tie_word_embeddings: false }) },
  { name: 'multi-head, tied', config: parseLlamaConfig({ vocab_size: 23, hidden_size: 10, intermediate_size: 14, num_hidden_layers: 1, num_attention_heads: 5, num_key_value_heads: 5, rms_norm_eps: 1e-5, rope_theta: 10, tie_word_embeddings: true }) },
  { name: 'multi-query, tied', config: parseLlamaConfig({ vocab_size: 17, hidden_size: 8, intermediate_size: 9, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: true }) }
]

/**
 * A random model and batch for the check. Weights are scaled up from the usual 0.02 (matrices
 * ~0.2 wide, norm gains in [0.5, 1.5]) so no part of the math is near-linear and gradients
 * stand well above float32 rounding.
 */
export function gradientCheckModel (config: LlamaConfig, seed: number, batch: number, seqLen: number): { params: ParamSet, inputIds: Int32Array } {
  const params = initParams(config, seed)
  const rand = uniformGenerator(seed + 1)
  for (const [name, t] of params.tensors) {
    if (t.shape.length === 1) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.5 + rand()
    else {
      const scale = name.includes('embed') || name.includes('lm_head') ? 20 : 10
      for (let i = 0; i < t.data.length; i++) t.data[i] *= scale
    }
  }
  const inputIds = new Int32Array(batch * (seqLen + 1))
  for (let i = 0; i < inputIds.length; i++) inputIds[i] = Math.floor(rand() * config.vocab_size)
  return { params, inputIds }
}

export interface GradientCheckOptions {
  /** coordinates sampled per tensor (all of a smaller tensor) */
  perTensor: number
  seed: number
  step?: number
  rtol?: number
  atol?: number
}

export interface GradientCheckResult {
  checked: number
  /** largest |analytic − numeric| / (atol + rtol·|numeric|): at most 1 passes */
  worst: number
  /** one line per coordinate out of tolerance */
  failures: string[]
}

/** Compares `analytic` (flat, in the ParamSet's layout) with central differences of evaluateLoss at random coordinates of every tensor. */
export function finiteDifferenceCheck (
  params: ParamSet, inputIds: Int32Array, batch: number, seqLen: number, analytic: Float32Array, opts: GradientCheckOptions
): GradientCheckResult {
  const h = opts.step ?? DEFAULT_STEP
  const rtol = opts.rtol ?? DEFAULT_RTOL
  const atol = opts.atol ?? DEFAULT_ATOL
  const rand = uniformGenerator(opts.seed)
  const failures: string[] = []
  let checked = 0
  let worst = 0
  let offset = 0
  for (const [name, t] of params.tensors) {
    const n = t.data.length
    for (let s = 0; s < Math.min(opts.perTensor, n); s++) {
      const at = offset + Math.floor(rand() * n)
      const saved = params.flat[at]
      params.flat[at] = saved + h
      const plus = evaluateLoss(params, inputIds, batch, seqLen)
      params.flat[at] = saved - h
      const minus = evaluateLoss(params, inputIds, batch, seqLen)
      params.flat[at] = saved
      // Divide by the step actually taken after float32 rounding of saved ± h.
      const numeric = (plus - minus) / (Math.fround(saved + h) - Math.fround(saved - h))
      const ratio = Math.abs(analytic[at] - numeric) / (atol + rtol * Math.abs(numeric))
      if (!(ratio <= 1)) failures.push(`${name}[${at - offset}]: analytic ${analytic[at]}, numeric ${numeric}`)
      worst = Math.max(worst, Number.isNaN(ratio) ? Infinity : ratio)
      checked++
    }
    offset += n
  }
  return { checked, worst, failures }
}

/*
 * How much memory one node needs to train a model, estimated from the model config and the
 * recipe, for the launch form. Deliberately simple and stated in the page:
 *
 *   parameters × 16 bytes   fp32 weights (4) + gradients (4) + AdamW's m and v (8)
 * + activations             batchSize × seqLen × hidden × layers × 24 floats × 4 bytes
 * + logits                  batchSize × seqLen × vocab × 2 (values and their gradient) × 4 bytes
 */

export interface MemoryEstimate {
  /** weights, gradients and optimizer state */
  state: number
  activations: number
  logits: number
  total: number
}

export const BYTES_PER_PARAM = 16
export const ACTIVATION_FLOATS_PER_TOKEN_LAYER = 24

function numberIn (config: Record<string, unknown>, key: string, fallback: number): number {
  const value = config[key]
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback
}

export function estimateNodeMemory (paramCount: number, config: Record<string, unknown>, recipe: { batchSize: number, seqLen: number }): MemoryEstimate {
  const hidden = numberIn(config, 'hidden_size', 0)
  const layers = numberIn(config, 'num_hidden_layers', 0)
  const vocab = numberIn(config, 'vocab_size', 0)
  const tokens = Math.max(0, recipe.batchSize) * Math.max(0, recipe.seqLen)
  const state = paramCount * BYTES_PER_PARAM
  const activations = tokens * hidden * layers * ACTIVATION_FLOATS_PER_TOKEN_LAYER * 4
  const logits = tokens * vocab * 2 * 4
  return { state, activations, logits, total: state + activations + logits }
}

// What the Llama model's passes cost, in FLOPs and bytes, and the limits agents hold them to: the
// one place the coordinator (who scores a run's reports: scorer in coordinator/src/runs/run-plan.ts),
// the agent (which scoring tasks it refuses: node-agent/src/scoring-task.ts) and the TypeScript
// executor (which units it refuses) read them from. When each counted for itself, one counted T²
// attention and another did not, and the coordinator asked nodes for work they then refused.
import type { LlamaConfig } from '@barnraise/protocol'
import { countParams } from './params.ts'

// Training memory is counted beside the workspace it describes (and tested against it); it is
// exported from here too so callers find every cost in one module.
export { trainingAttentionBytes, trainingWorkspaceBytes } from './workspace.ts'

/**
 * The largest model the TypeScript trainer trains and its forward pass scores: past it the CPU
 * is the wrong tool (the 186M `large` preset runs at a few tokens per second per core, so a round
 * of any useful size takes hours; GPU presets start at 124M).
 */
export const TYPESCRIPT_MAX_PARAMS = 50_000_000

/**
 * The most forward-pass work an agent does for one scoring task. The coordinator asks for half
 * of it at most (NODE_SCORING_MAX_FLOPS), so an agent that counts the same never refuses it.
 */
export const AGENT_SCORING_MAX_FLOPS = 2e12

/** The share of its machine's memory an agent lets one scoring task need; the rest is the donor's. */
export const SCORING_MEMORY_SHARE = 0.5

/** Forward passes of a scoring task: the base weights, base − Δ and base + Δ. */
export const SCORING_PASSES = 3

/**
 * FLOPs of a forward pass per token at `seqLen`: 2 a parameter for the matrix products, plus
 * attention's scores and weighted sums, 4 · layers · heads · headDim · seqLen (its T² share).
 */
export function forwardFlopsPerToken (config: LlamaConfig, seqLen: number): number {
  const c = config
  return 2 * countParams(c) + 4 * c.num_hidden_layers * c.num_attention_heads * c.head_dim * seqLen
}

/** FLOPs of a training step per token at `seqLen`: forward and backward, three forward passes' worth. */
export function trainingFlopsPerToken (config: LlamaConfig, seqLen: number): number {
  return 3 * forwardFlopsPerToken(config, seqLen)
}

/** FLOPs of a scoring task: three forward passes over `batch` windows of `seqLen` tokens. */
export function scoringTaskFlops (config: LlamaConfig, batch: number, seqLen: number): number {
  return SCORING_PASSES * batch * seqLen * forwardFlopsPerToken(config, seqLen)
}

/**
 * Bytes a forward pass over `batch` windows of `seqLen` tokens may hold, weights aside: the
 * logits, and each layer's activations and T² attention probabilities. An upper bound on
 * purpose: evaluation reuses one layer's buffers, but a refusal should err on the donor's side.
 */
export function forwardPassBytes (config: LlamaConfig, batch: number, seqLen: number): number {
  const c = config
  const attention = c.num_hidden_layers * batch * c.num_attention_heads * seqLen * seqLen
  const activations = batch * seqLen * (c.vocab_size + c.num_hidden_layers * (10 * c.hidden_size + 3 * c.intermediate_size))
  return 4 * (attention + activations)
}

/** Bytes a scoring task needs: the three weight vectors it measures (base, base − Δ, base + Δ) and a forward pass. */
export function scoringTaskBytes (config: LlamaConfig, batch: number, seqLen: number): number {
  return 4 * SCORING_PASSES * countParams(config) + forwardPassBytes(config, batch, seqLen)
}

/**
 * The most parameters an agent takes a torch unit or scoring task for: it holds the weights it
 * hands the child as Float32Arrays (base, θ_local and the delta), and V8 caps one at 2^32
 * elements (createParamSet says so). The torch executor's own limit, and the largest model the
 * coordinator asks torch nodes to score.
 */
export const TORCH_MAX_PARAMS = 2 ** 32 - 1

/**
 * The most forward-pass work an agent scores with its torch executor for one task. Far above the
 * TypeScript bound: a 1B model's task (8 windows of 2,048 tokens, three passes) is about 120
 * TFLOP, seconds on a GPU in float32. The coordinator asks for half of it at most
 * (NODE_TORCH_SCORING_MAX_FLOPS); each agent also refuses what its measured speed cannot finish
 * well before the round's deadline.
 */
export const AGENT_TORCH_SCORING_MAX_FLOPS = 2e15

/**
 * Bytes of logits and activations one pass of the torch child's `evaluate` takes at most: it
 * feeds the windows a few rows at a time (torch-executor/barnraise_torch/evaluate.py,
 * ROWS_PER_PASS_BYTES; the two must stay equal).
 */
export const TORCH_EVALUATE_PASS_BYTES = 2 ** 30

/**
 * Bytes a scoring task needs on the torch executor: the model, the base weights and Δ on the
 * device (evaluate.py builds weights + s·Δ in place from one load of both), and one pass of the
 * rows evaluate.py takes at once, one layer at a time (no gradients are kept): its logits twice
 * (cross-entropy's log-softmax), the layer's activations and, without fused attention, three
 * T² score tensors (the scores, masked, softmaxed). On the CPU the agent's own copies of the checkpoint
 * and the decoded Δ share the host, so they count too. An upper bound, like forwardPassBytes.
 */
export function torchScoringTaskBytes (config: LlamaConfig, batch: number, seqLen: number, executor: 'torch-cpu' | 'torch-cuda'): number {
  const c = config
  const params = countParams(c)
  const rows = Math.min(batch, Math.max(1, Math.floor(TORCH_EVALUATE_PASS_BYTES / (seqLen * (c.vocab_size + 4 * c.hidden_size) * 4))))
  const pass = 4 * rows * (seqLen * (2 * c.vocab_size + 10 * c.hidden_size + 3 * c.intermediate_size) + 3 * c.num_attention_heads * seqLen * seqLen)
  // The model, the base weights and Δ: 4 bytes a parameter each.
  const device = 12 * params + pass
  return executor === 'torch-cpu' ? device + 8 * params : device
}

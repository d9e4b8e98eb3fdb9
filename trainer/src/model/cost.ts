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

// The model's shape, as a Hugging Face LlamaForCausalLM config.json. Checkpoints ship this file
// unchanged, so the same object configures our trainer and `transformers`. Keys we do not use
// are accepted and dropped; keys that would change the math in ways we do not implement
// (biases, another activation, rope scaling) are refused rather than silently ignored.
import { z } from 'zod'
import { CodedError } from './coded-error.ts'

/**
 * Upper bounds on every dimension. A config arrives from the coordinator (or a checkpoint on
 * disk), and every consumer sizes lists and buffers from it: without a bound one number can make
 * an agent or its torch child allocate until the OOM killer steps in. The bounds sit far above
 * any Llama released (405B: 126 layers, hidden 16384, MLP 53248, vocabulary 128256, 128 heads,
 * head_dim 128, 131072 positions). torch-executor/barnraise_torch/config.py mirrors them.
 */
export const LLAMA_LIMITS = {
  vocab_size: 2 ** 22,
  hidden_size: 2 ** 17,
  intermediate_size: 2 ** 17,
  num_hidden_layers: 1024,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 1024,
  max_position_embeddings: 2 ** 20
} as const

const positiveInt = (max: number): z.ZodNumber =>
  z.number({ error: 'must be a number' }).int('must be an integer').positive('must be positive').max(max, `must be at most ${max}`)

const llamaConfigObject = z.object({
  vocab_size: positiveInt(LLAMA_LIMITS.vocab_size),
  hidden_size: positiveInt(LLAMA_LIMITS.hidden_size),
  intermediate_size: positiveInt(LLAMA_LIMITS.intermediate_size),
  num_hidden_layers: positiveInt(LLAMA_LIMITS.num_hidden_layers),
  num_attention_heads: positiveInt(LLAMA_LIMITS.num_attention_heads),
  num_key_value_heads: positiveInt(LLAMA_LIMITS.num_key_value_heads).optional(),
  head_dim: positiveInt(LLAMA_LIMITS.head_dim).optional(),
  // HF LlamaConfig defaults for the optional numeric fields.
  rms_norm_eps: z.number({ error: 'must be a number' }).positive('must be positive').finite().default(1e-6),
  rope_theta: z.number({ error: 'must be a number' }).positive('must be positive').finite().default(10000),
  tie_word_embeddings: z.boolean({ error: 'must be true or false' }).default(false),
  max_position_embeddings: positiveInt(LLAMA_LIMITS.max_position_embeddings).default(2048),
  hidden_act: z.literal('silu', { error: 'must be "silu" (SwiGLU); other activations are not implemented' }).optional(),
  attention_bias: z.literal(false, { error: 'must be false; biased projections are not implemented' }).optional(),
  mlp_bias: z.literal(false, { error: 'must be false; biased projections are not implemented' }).optional(),
  rope_scaling: z.null({ error: 'must be null; scaled rotary embeddings are not implemented' }).optional()
})

/** A validated Llama config with every default filled in (unknown keys dropped). */
export interface LlamaConfig {
  vocab_size: number
  hidden_size: number
  intermediate_size: number
  num_hidden_layers: number
  num_attention_heads: number
  num_key_value_heads: number
  head_dim: number
  rms_norm_eps: number
  rope_theta: number
  tie_word_embeddings: boolean
  max_position_embeddings: number
}

/** A config that cannot describe a model we can run; `field` names the offending key. */
export class LlamaConfigError extends CodedError<'ERR_INVALID_CONFIG'> {
  readonly field: string
  constructor (field: string, message: string) {
    super('ERR_INVALID_CONFIG', `invalid Llama config: ${field}: ${message}`)
    this.field = field
  }
}

/** Schema for a Hugging Face LlamaForCausalLM config.json, producing a LlamaConfig with defaults filled in. */
export const llamaConfigSchema = llamaConfigObject.transform((c, ctx): LlamaConfig => {
  const kvHeads = c.num_key_value_heads ?? c.num_attention_heads
  if (c.num_attention_heads % kvHeads !== 0) {
    ctx.addIssue({ code: 'custom', path: ['num_key_value_heads'], message: `num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${kvHeads})` })
    return z.NEVER
  }
  if (c.head_dim === undefined && c.hidden_size % c.num_attention_heads !== 0) {
    ctx.addIssue({ code: 'custom', path: ['hidden_size'], message: `hidden_size (${c.hidden_size}) must be a multiple of num_attention_heads (${c.num_attention_heads}), or set head_dim` })
    return z.NEVER
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads
  if (headDim > LLAMA_LIMITS.head_dim) {
    ctx.addIssue({ code: 'custom', path: ['head_dim'], message: `head_dim (${headDim}, hidden_size / num_attention_heads) must be at most ${LLAMA_LIMITS.head_dim}` })
    return z.NEVER
  }
  if (headDim % 2 !== 0) {
    ctx.addIssue({ code: 'custom', path: ['head_dim'], message: `head_dim (${headDim}) must be even: rotary embeddings rotate pairs` })
    return z.NEVER
  }
  return {
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    tie_word_embeddings: c.tie_word_embeddings,
    max_position_embeddings: c.max_position_embeddings
  }
})

/** Validates a parsed config.json; throws LlamaConfigError (code ERR_INVALID_CONFIG) naming the first bad field. */
export function parseLlamaConfig (json: unknown): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new LlamaConfigError('(config)', 'expected a JSON object (the contents of config.json)')
  }
  const result = llamaConfigSchema.safeParse(json)
  if (!result.success) {
    const issue = result.error.issues[0]
    const field = issue.path.map(String).join('.') || '(config)'
    const present = issue.path.length === 1 && (json as Record<string, unknown>)[String(issue.path[0])] !== undefined
    const message = issue.code === 'invalid_type' && !present ? 'is required' : issue.message
    throw new LlamaConfigError(field, message)
  }
  return result.data
}

// Model weights as one flat Float32Array with named views. Optimizers, codecs and the
// pseudo-gradient work on `flat`; the model and checkpoint I/O work on the named tensors.
// Gradients use the same layout (a second ParamSet), so θ and ∇θ line up element by element.
import type { LlamaConfig } from '@barnraise/protocol'
import { ModelError } from './model-error.ts'
import { normalGenerator } from './random.ts'

export interface Tensor { shape: number[], data: Float32Array }

/** All weights in one contiguous Float32Array; each tensor's data is a subarray view of `flat`. */
export interface ParamSet { config: LlamaConfig, flat: Float32Array, tensors: Map<string, Tensor> }

/** Hugging Face initializer_range: every linear and embedding weight starts as N(0, 0.02²). */
export const INIT_STD = 0.02

/** Every weight's Hugging Face name and shape, in PyTorch's named_parameters order; lm_head.weight only when untied. */
export function paramSpecs (config: LlamaConfig): Array<{ name: string, shape: number[] }> {
  const d = config.hidden_size
  const qDim = config.num_attention_heads * config.head_dim
  const kvDim = config.num_key_value_heads * config.head_dim
  const inter = config.intermediate_size
  const specs: Array<{ name: string, shape: number[] }> = [{ name: 'model.embed_tokens.weight', shape: [config.vocab_size, d] }]
  for (let l = 0; l < config.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`
    specs.push(
      { name: `${p}self_attn.q_proj.weight`, shape: [qDim, d] },
      { name: `${p}self_attn.k_proj.weight`, shape: [kvDim, d] },
      { name: `${p}self_attn.v_proj.weight`, shape: [kvDim, d] },
      { name: `${p}self_attn.o_proj.weight`, shape: [d, qDim] },
      { name: `${p}mlp.gate_proj.weight`, shape: [inter, d] },
      { name: `${p}mlp.up_proj.weight`, shape: [inter, d] },
      { name: `${p}mlp.down_proj.weight`, shape: [d, inter] },
      { name: `${p}input_layernorm.weight`, shape: [d] },
      { name: `${p}post_attention_layernorm.weight`, shape: [d] }
    )
  }
  specs.push({ name: 'model.norm.weight', shape: [d] })
  if (!config.tie_word_embeddings) specs.push({ name: 'lm_head.weight', shape: [config.vocab_size, d] })
  return specs
}

/** Number of elements of a shape. */
export function shapeSize (shape: number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/** Total number of weights (tied embeddings counted once). */
export function countParams (config: LlamaConfig): number {
  let n = 0
  for (const s of paramSpecs(config)) n += shapeSize(s.shape)
  return n
}

/** Views every tensor onto `flat` (zero-filled when omitted); throws ERR_BAD_PARAMS if flat has the wrong length. */
export function createParamSet (config: LlamaConfig, flat?: Float32Array): ParamSet {
  const total = countParams(config)
  if (flat === undefined) {
    // V8 caps typed arrays at 2^32 elements; say so instead of a bare RangeError.
    if (total > 2 ** 32) throw new ModelError('ERR_BAD_PARAMS', `a model of ${total} parameters is too large for one Float32Array`)
    flat = new Float32Array(total)
  } else if (flat.length !== total) {
    throw new ModelError('ERR_BAD_PARAMS', `flat weights have ${flat.length} elements but this config needs ${total}`)
  }
  const tensors = new Map<string, Tensor>()
  let at = 0
  for (const { name, shape } of paramSpecs(config)) {
    const size = shapeSize(shape)
    tensors.set(name, { shape, data: flat.subarray(at, at + size) })
    at += size
  }
  return { config, flat, tensors }
}

/** Fresh weights like Hugging Face's init (linear and embedding N(0, 0.02²), norms 1), reproducible for a seed. */
export function initParams (config: LlamaConfig, seed: number): ParamSet {
  if (!Number.isSafeInteger(seed)) throw new ModelError('ERR_BAD_PARAMS', `seed ${seed} must be an integer`)
  const params = createParamSet(config)
  const normal = normalGenerator(seed)
  for (const tensor of params.tensors.values()) {
    const data = tensor.data
    if (tensor.shape.length === 1) data.fill(1) // RMSNorm gains
    else for (let i = 0; i < data.length; i++) data[i] = normal() * INIT_STD
  }
  return params
}

/** The tensor called `name`, or ERR_BAD_PARAMS naming it when the set lacks it. */
export function getTensor (params: ParamSet, name: string): Tensor {
  const t = params.tensors.get(name)
  if (t === undefined) throw new ModelError('ERR_BAD_PARAMS', `parameter set has no tensor "${name}"`)
  return t
}

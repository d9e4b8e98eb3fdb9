// Named tensors of a ParamSet resolved once per call into the structure the model walks.
// The same resolution serves weights and gradients, since both share one layout.
import { ModelError } from './model-error.ts'
import { getTensor } from './params.ts'
import type { ParamSet } from './params.ts'

export interface LayerWeights {
  inputNorm: Float32Array
  q: Float32Array
  k: Float32Array
  v: Float32Array
  o: Float32Array
  postNorm: Float32Array
  gate: Float32Array
  up: Float32Array
  down: Float32Array
}

export interface ModelWeights {
  embed: Float32Array
  layers: LayerWeights[]
  norm: Float32Array
  /** lm_head.weight, or the embedding itself when tied. */
  head: Float32Array
}

/** The views of every weight of `params`, checking each tensor's shape against the config. */
export function resolveWeights (params: ParamSet): ModelWeights {
  const c = params.config
  const d = c.hidden_size
  const qDim = c.num_attention_heads * c.head_dim
  const kvDim = c.num_key_value_heads * c.head_dim
  const inter = c.intermediate_size
  const get = (name: string, size: number): Float32Array => {
    const data = getTensor(params, name).data
    if (data.length !== size) throw new ModelError('ERR_BAD_PARAMS', `tensor "${name}" has ${data.length} elements, the config needs ${size}`)
    return data
  }
  const embed = get('model.embed_tokens.weight', c.vocab_size * d)
  const layers: LayerWeights[] = []
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`
    layers.push({
      inputNorm: get(`${p}input_layernorm.weight`, d),
      q: get(`${p}self_attn.q_proj.weight`, qDim * d),
      k: get(`${p}self_attn.k_proj.weight`, kvDim * d),
      v: get(`${p}self_attn.v_proj.weight`, kvDim * d),
      o: get(`${p}self_attn.o_proj.weight`, d * qDim),
      postNorm: get(`${p}post_attention_layernorm.weight`, d),
      gate: get(`${p}mlp.gate_proj.weight`, inter * d),
      up: get(`${p}mlp.up_proj.weight`, inter * d),
      down: get(`${p}mlp.down_proj.weight`, d * inter)
    })
  }
  const norm = get('model.norm.weight', d)
  const head = c.tie_word_embeddings ? embed : get('lm_head.weight', c.vocab_size * d)
  return { embed, layers, norm, head }
}

// A checkpoint as a Hugging Face folder, in memory: what `exportHuggingFace` writes to disk
// and what the coordinator serves over HTTP. `LlamaForCausalLM.from_pretrained` and
// `AutoTokenizer.from_pretrained` load the folder as is.
import { encodeSafetensors, float32ToTensor, FLOAT16_MAX, safetensorsParts } from '@barnraise/protocol'
import type { LlamaConfig, TensorEntry } from '@barnraise/protocol'
import { createParamSet } from '../model/params.ts'
import type { ParamSet } from '../model/params.ts'
import { HuggingFaceError } from './hf-error.ts'
import { specialTokensMapJson, tokenizerConfigJson, tokenizerJson } from './tokenizer-files.ts'

export type ExportDtype = 'F32' | 'F16' | 'BF16'
export interface ExportOptions { dtype: ExportDtype }

/** The transformers release whose LlamaConfig knows every key we write (head_dim, mlp_bias). */
export const TRANSFORMERS_VERSION = '4.46.0'

const TORCH_DTYPE: Record<ExportDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }

/** config.json for a LlamaForCausalLM with our config; no BOS/EOS ids, since every token is a byte. */
export function huggingFaceConfigJson (config: LlamaConfig, dtype: ExportDtype): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: config.vocab_size,
    hidden_size: config.hidden_size,
    intermediate_size: config.intermediate_size,
    num_hidden_layers: config.num_hidden_layers,
    num_attention_heads: config.num_attention_heads,
    num_key_value_heads: config.num_key_value_heads,
    head_dim: config.head_dim,
    rms_norm_eps: config.rms_norm_eps,
    rope_theta: config.rope_theta,
    rope_scaling: null,
    tie_word_embeddings: config.tie_word_embeddings,
    max_position_embeddings: config.max_position_embeddings,
    hidden_act: 'silu',
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    initializer_range: 0.02,
    use_cache: true,
    bos_token_id: null,
    eos_token_id: null,
    pad_token_id: null,
    torch_dtype: TORCH_DTYPE[dtype],
    transformers_version: TRANSFORMERS_VERSION
  }
}

/** model.safetensors: every weight under its Hugging Face name, in `dtype`, with `__metadata__.format = "pt"`. */
export function modelSafetensors (params: ParamSet, opts: ExportOptions): Uint8Array {
  const tensors = new Map<string, TensorEntry>()
  for (const [name, t] of params.tensors) {
    if (opts.dtype === 'F16') {
      for (let i = 0; i < t.data.length; i++) {
        if (Math.abs(t.data[i]) > FLOAT16_MAX) throw new HuggingFaceError('ERR_OUT_OF_RANGE', `weight ${name}[${i}] = ${t.data[i]} does not fit in F16 (±${FLOAT16_MAX}); export as BF16 or F32`)
      }
    }
    tensors.set(name, float32ToTensor(t.data, t.shape, opts.dtype))
  }
  return encodeSafetensors(tensors, { format: 'pt' })
}

const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n'

/**
 * The folder's files besides the weights: config.json and the tokenizer files (the byte
 * tokenizer's unless others are given). They depend on the config and tokenizer alone, so a
 * server can list and send them without reading the weights.
 */
export function huggingFaceTextFiles (config: LlamaConfig, dtype: ExportDtype, tokenizerFiles?: Map<string, Record<string, unknown>>): Map<string, string> {
  // Without other tokenizer files, the byte tokenizer's.
  const tokenizer = tokenizerFiles ?? new Map([
    ['tokenizer.json', tokenizerJson()],
    ['tokenizer_config.json', tokenizerConfigJson(config.max_position_embeddings)],
    ['special_tokens_map.json', specialTokensMapJson()]
  ])
  return new Map([['config.json', json(huggingFaceConfigJson(config, dtype))], ...[...tokenizer].map(([name, value]): [string, string] => [name, json(value)])])
}

/** Every file of the Hugging Face folder for `params`, by file name (text files as strings). */
export function checkpointFiles (params: ParamSet, opts: ExportOptions): Map<string, Uint8Array | string> {
  return new Map<string, Uint8Array | string>([
    ...huggingFaceTextFiles(params.config, opts.dtype),
    ['model.safetensors', modelSafetensors(params, opts)]
  ])
}

/**
 * A checkpoint as the coordinator stores it: model.safetensors in F32, so its sha256 is the
 * checkpoint's id. Agents that rebuild a base from a round's reports check theirs against it.
 */
export function storedCheckpointBytes (config: LlamaConfig, flat: Float32Array): Uint8Array {
  return modelSafetensors(createParamSet(config, flat), { dtype: 'F32' })
}

/** F32 bytes of float32 values on a little-endian host: a view of the same memory, not a copy. */
function float32View (data: Float32Array, shape: number[]): TensorEntry {
  return { dtype: 'F32', shape: [...shape], data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }
}

/**
 * storedCheckpointBytes's bytes as parts end to end (safetensorsParts): the header, then views of
 * `flat`'s own memory. The coordinator hashes and writes a checkpoint from them, where building
 * it whole was a second model in memory (4 GB at 1B parameters). `flat` must not change while
 * the parts are used.
 */
export function storedCheckpointParts (config: LlamaConfig, flat: Float32Array): Uint8Array[] {
  // Checks the host is little-endian (F32 bytes are then the values' own memory), as storedCheckpointBytes does.
  float32ToTensor(new Float32Array(0), [0])
  const tensors = new Map<string, TensorEntry>()
  for (const [name, t] of createParamSet(config, flat).tensors) tensors.set(name, float32View(t.data, t.shape))
  return safetensorsParts(tensors, { format: 'pt' })
}

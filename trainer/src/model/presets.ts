// Named model sizes. All use the byte tokenizer's 256-token vocabulary, so any of them trains
// on the demo corpus without a tokenizer file.
import { parseLlamaConfig } from '@barnraise/protocol'
import type { LlamaConfig } from '@barnraise/protocol'
import { ModelError } from './model-error.ts'

const byteLlama = (shape: Record<string, number | boolean>): LlamaConfig => parseLlamaConfig({
  vocab_size: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  ...shape
})

/**
 * tiny: for tests (0.11M parameters). small: the default demo model (0.20M), sized so a training
 * step of batch 8 × seq 128 takes about half a second on one CPU core, less with GradientPool
 * (hidden 128 with 4 layers takes 1.5 s). medium (23M) and large (186M): configs for bigger donors.
 */
export const modelPresets: Readonly<Record<string, LlamaConfig>> = Object.freeze({
  tiny: byteLlama({ hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, tie_word_embeddings: true }),
  small: byteLlama({ hidden_size: 64, intermediate_size: 172, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512, tie_word_embeddings: true }),
  medium: byteLlama({ hidden_size: 512, intermediate_size: 1376, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 4, max_position_embeddings: 1024, tie_word_embeddings: true }),
  large: byteLlama({ hidden_size: 1024, intermediate_size: 2752, num_hidden_layers: 16, num_attention_heads: 16, num_key_value_heads: 8, max_position_embeddings: 2048, tie_word_embeddings: false })
})

/**
 * GPU-sized presets (124M, 347M and 1.04B parameters), Llama-shaped: SwiGLU MLPs of about
 * 2.7–3.7× the hidden size, head_dim 64 or 128, grouped-query attention on the largest. They
 * need the PyTorch executor (torch-executor/, which keeps the same table in
 * barnraise_torch/presets.py); the TypeScript executor refuses them.
 */
export const gpuModelPresets: Readonly<Record<string, LlamaConfig>> = Object.freeze({
  '125m': byteLlama({ hidden_size: 768, intermediate_size: 2816, num_hidden_layers: 14, num_attention_heads: 12, num_key_value_heads: 12, max_position_embeddings: 2048, tie_word_embeddings: false }),
  '350m': byteLlama({ hidden_size: 1024, intermediate_size: 3328, num_hidden_layers: 24, num_attention_heads: 16, num_key_value_heads: 16, max_position_embeddings: 2048, tie_word_embeddings: false }),
  '1b': byteLlama({ hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 16, num_key_value_heads: 8, max_position_embeddings: 2048, tie_word_embeddings: false })
})

/** The config of preset `name` (CPU or GPU-sized); throws ERR_UNKNOWN_PRESET listing the known names. */
export function presetConfig (name: string): LlamaConfig {
  if (Object.hasOwn(modelPresets, name)) return { ...modelPresets[name] }
  if (Object.hasOwn(gpuModelPresets, name)) return { ...gpuModelPresets[name] }
  const known = [...Object.keys(modelPresets), ...Object.keys(gpuModelPresets)]
  throw new ModelError('ERR_UNKNOWN_PRESET', `unknown model preset "${name}"; known presets: ${known.join(', ')}`)
}

import type { LlamaConfig } from '@barnraise/protocol'
import { huggingFaceTextFiles, paramSetFromSafetensors, storedCheckpointBytes } from '@barnraise/trainer'

/** The flat weights in a stored checkpoint (an F32 model.safetensors) of a model shaped by `config`. */
export function checkpointWeights (config: LlamaConfig, bytes: Uint8Array): Float32Array {
  return paramSetFromSafetensors(config, bytes).flat
}

/** A checkpoint as stored: model.safetensors in F32, so its sha256 is the checkpoint's id. */
export function checkpointBytes (config: LlamaConfig, flat: Float32Array): Uint8Array {
  return storedCheckpointBytes(config, flat)
}

/**
 * A checkpoint folder's files besides model.safetensors (config.json, tokenizer files); the
 * weights are stored as F32, so config.json says float32.
 */
export function checkpointTextFiles (config: LlamaConfig, tokenizerFiles?: Map<string, Record<string, unknown>>): Map<string, Uint8Array> {
  return new Map([...huggingFaceTextFiles(config, 'F32', tokenizerFiles)].map(([name, text]) => [name, new TextEncoder().encode(text)]))
}

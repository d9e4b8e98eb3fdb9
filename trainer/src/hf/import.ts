// Loading a Hugging Face Llama checkpoint into a ParamSet: config.json, then model.safetensors
// (or the shards a model.safetensors.index.json lists). Every weight our model needs must be
// there with its exact shape, as F32, F16 or BF16, and finite; anything else is refused with a
// message naming the tensor.
import { join } from 'node:path'
import { decodeSafetensors, parseLlamaConfig, readWholeFile, tensorToFloat32 } from '@barnraise/protocol'
import type { LlamaConfig, TensorEntry } from '@barnraise/protocol'
import { createParamSet, paramSpecs } from '../model/params.ts'
import type { ParamSet } from '../model/params.ts'
import { HuggingFaceError } from './hf-error.ts'

/** Buffers some exporters save that carry no weights (older Llama checkpoints store inv_freq). */
const IGNORED = /\.rotary_emb\.inv_freq$/

/** Builds a ParamSet for `config` from safetensors tensors, checking names, shapes, dtypes and finiteness. */
export function paramSetFromTensors (config: LlamaConfig, tensors: Map<string, TensorEntry>): ParamSet {
  const params = createParamSet(config)
  const expected = new Set<string>()
  for (const spec of paramSpecs(config)) {
    expected.add(spec.name)
    const entry = tensors.get(spec.name)
    if (entry === undefined) throw new HuggingFaceError('ERR_MISSING_TENSOR', `checkpoint lacks tensor ${spec.name} ${JSON.stringify(spec.shape)} that this config needs`)
    if (entry.shape.length !== spec.shape.length || entry.shape.some((d, i) => d !== spec.shape[i])) {
      throw new HuggingFaceError('ERR_SHAPE_MISMATCH', `tensor ${spec.name} has shape ${JSON.stringify(entry.shape)}, but the config needs ${JSON.stringify(spec.shape)}`)
    }
    if (entry.dtype !== 'F32' && entry.dtype !== 'F16' && entry.dtype !== 'BF16') {
      throw new HuggingFaceError('ERR_UNSUPPORTED_DTYPE', `tensor ${spec.name} is ${entry.dtype}; weights must be F32, F16 or BF16`)
    }
    const values = tensorToFloat32(entry)
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw new HuggingFaceError('ERR_NON_FINITE', `tensor ${spec.name} holds ${values[i]} at element ${i}`)
    }
    const target = params.tensors.get(spec.name)
    if (target === undefined) throw new HuggingFaceError('ERR_MISSING_TENSOR', `parameter set has no tensor ${spec.name}`)
    target.data.set(values)
  }
  for (const name of tensors.keys()) {
    if (expected.has(name) || IGNORED.test(name)) continue
    // A tied model's head is the embedding; some exporters still write a copy. transformers ignores it too.
    if (name === 'lm_head.weight' && config.tie_word_embeddings) continue
    throw new HuggingFaceError('ERR_UNEXPECTED_TENSOR', `checkpoint has tensor ${name}, which this config has no place for (another architecture, or biases we do not implement)`)
  }
  return params
}

/**
 * The largest safetensors header a checkpoint of `config` may have. Our writer spends about 110
 * bytes a tensor (name, dtype, shape, offsets); 256 leaves room for longer names and offsets in
 * multi-gigabyte files, with one entry a layer (and lm_head) more for the buffers some exporters
 * add and we ignore (rotary_emb.inv_freq, a tied head's copy), and 64 KiB for __metadata__. A
 * 1024-layer model gets under 3 MB, where the format's own cap is 100 MB.
 */
export function checkpointHeaderLimit (config: LlamaConfig): number {
  return 64 * 1024 + 256 * (paramSpecs(config).length + config.num_hidden_layers + 1)
}

/**
 * Decodes a model.safetensors for `config` into a ParamSet. The header is bounded by what the
 * config implies before it is parsed: a checkpoint comes from the coordinator, and a bloated
 * header would hold the thread (or exhaust the heap) for nothing.
 */
export function paramSetFromSafetensors (config: LlamaConfig, bytes: Uint8Array): ParamSet {
  return paramSetFromTensors(config, decodeSafetensors(bytes, { maxHeaderBytes: checkpointHeaderLimit(config) }).tensors)
}

async function readIn (dir: string, name: string): Promise<Uint8Array | undefined> {
  try {
    // A 1B model's weights are past fs.readFile's 2 GiB.
    return await readWholeFile(join(dir, name))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** The weight map of a sharded checkpoint (model.safetensors.index.json). */
function shardFiles (indexText: string): string[] {
  let index: unknown
  try {
    index = JSON.parse(indexText)
  } catch (err) {
    throw new HuggingFaceError('ERR_BAD_INDEX', `model.safetensors.index.json is not JSON: ${(err as Error).message}`)
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map
  if (typeof map !== 'object' || map === null) throw new HuggingFaceError('ERR_BAD_INDEX', 'model.safetensors.index.json has no weight_map object')
  const files = new Set<string>()
  for (const file of Object.values(map)) {
    // Shards live beside the index; a path that climbs out of the folder is refused.
    if (typeof file !== 'string' || !/^[\w.-]+\.safetensors$/.test(file)) throw new HuggingFaceError('ERR_BAD_INDEX', `weight_map names an invalid shard file ${JSON.stringify(file)}`)
    files.add(file)
  }
  return [...files]
}

/** Reads a Hugging Face Llama folder (config.json + model.safetensors or an index of shards) into a ParamSet. */
export async function importHuggingFace (dir: string): Promise<ParamSet> {
  const configBytes = await readIn(dir, 'config.json')
  if (configBytes === undefined) throw new HuggingFaceError('ERR_MISSING_FILE', `${join(dir, 'config.json')} not found; is this a Hugging Face model folder?`)
  let configJson: unknown
  try {
    configJson = JSON.parse(new TextDecoder().decode(configBytes))
  } catch (err) {
    throw new HuggingFaceError('ERR_BAD_CONFIG', `config.json is not JSON: ${(err as Error).message}`)
  }
  const config = parseLlamaConfig(configJson)

  const single = await readIn(dir, 'model.safetensors')
  if (single !== undefined) return paramSetFromSafetensors(config, single)
  const index = await readIn(dir, 'model.safetensors.index.json')
  if (index === undefined) throw new HuggingFaceError('ERR_MISSING_FILE', `${dir} has neither model.safetensors nor model.safetensors.index.json`)
  const tensors = new Map<string, TensorEntry>()
  for (const file of shardFiles(new TextDecoder().decode(index))) {
    const bytes = await readIn(dir, file)
    if (bytes === undefined) throw new HuggingFaceError('ERR_MISSING_FILE', `shard ${file} listed in model.safetensors.index.json is missing`)
    // Each shard holds some of the tensors, so the whole model's bound holds for it too.
    for (const [name, t] of decodeSafetensors(bytes, { maxHeaderBytes: checkpointHeaderLimit(config) }).tensors) tensors.set(name, t)
  }
  return paramSetFromTensors(config, tensors)
}

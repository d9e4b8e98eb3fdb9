// Known-answer files of kind `llama-forward-backward` (trainer/test-data/golden/README.md):
// weights, tokens, and PyTorch's logits, loss and gradients, used by the tests and by
// `barnraise-agent selftest` to prove this machine computes what PyTorch computes.
import { CodedError, decodeSafetensors, parseLlamaConfig, tensorToFloat32, tensorToInt32 } from '@barnraise/protocol'
import type { LlamaConfig, SafetensorsFile, TensorEntry } from '@barnraise/protocol'
import { fileURLToPath } from 'node:url'
import { createParamSet } from './params.ts'
import type { ParamSet } from './params.ts'

/** Absolute path of the known-answer files shipped with this package (trainer/test-data/golden/). */
export const GOLDEN_DIR = fileURLToPath(new URL('../../test-data/golden/', import.meta.url))

/** A malformed or mismatched known-answer file. */
export class GoldenFileError extends CodedError<'ERR_BAD_GOLDEN'> {
  constructor (message: string) {
    super('ERR_BAD_GOLDEN', message)
  }
}

export interface LlamaGolden {
  config: LlamaConfig
  params: ParamSet
  inputIds: Int32Array
  batch: number
  seqLen: number
  logits: Float32Array
  loss: number
  /** Reference gradients, keyed by parameter name. */
  grads: Map<string, Float32Array>
}

/** ||ours − ref|| / ||ref|| (float64 sums); the metric the golden files are judged by. Infinity when shapes differ. */
export function relativeError (ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (ours.length !== ref.length) return Infinity
  let num = 0
  let den = 0
  for (let i = 0; i < ref.length; i++) {
    num += (ours[i] - ref[i]) ** 2
    den += ref[i] ** 2
  }
  if (den === 0) return num === 0 ? 0 : Infinity
  return Math.sqrt(num / den)
}

/** The `kind` a decoded golden file declares (undefined when it declares none). */
export function goldenKind (file: SafetensorsFile): string | undefined {
  return file.metadata.kind
}

function entry (file: SafetensorsFile, name: string, shape: number[]): TensorEntry {
  const e = file.tensors.get(name)
  if (e === undefined) throw new GoldenFileError(`golden file has no tensor "${name}"`)
  if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
    throw new GoldenFileError(`golden tensor "${name}" has shape [${e.shape.join(', ')}], expected [${shape.join(', ')}]`)
  }
  return e
}

function floats (file: SafetensorsFile, name: string, shape: number[]): Float32Array {
  const data = tensorToFloat32(entry(file, name, shape))
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new GoldenFileError(`golden tensor "${name}" holds a non-finite value at ${i}`)
  }
  return data
}

/** Reads a decoded `llama-forward-backward` file, checking its kind, config and every tensor's presence and shape. */
export function readLlamaGolden (file: SafetensorsFile): LlamaGolden {
  const kind = goldenKind(file)
  if (kind !== 'llama-forward-backward') throw new GoldenFileError(`golden file kind is ${JSON.stringify(kind)}, expected "llama-forward-backward"`)
  let rawConfig: unknown
  try {
    rawConfig = JSON.parse(file.metadata.config ?? '')
  } catch {
    throw new GoldenFileError('golden file metadata "config" is missing or not JSON')
  }
  const config = parseLlamaConfig(rawConfig)
  const ids = file.tensors.get('input_ids')
  if (ids === undefined || ids.shape.length !== 2 || ids.shape[0] < 1 || ids.shape[1] < 2) {
    throw new GoldenFileError('golden file needs "input_ids" of shape [batch, seqLen + 1] with seqLen ≥ 1')
  }
  const [batch, window] = ids.shape
  const seqLen = window - 1
  const inputIds = tensorToInt32(ids)
  const params = createParamSet(config)
  const grads = new Map<string, Float32Array>()
  for (const [name, tensor] of params.tensors) {
    tensor.data.set(floats(file, `param/${name}`, tensor.shape))
    grads.set(name, floats(file, `grad/${name}`, tensor.shape))
  }
  return {
    config,
    params,
    inputIds,
    batch,
    seqLen,
    logits: floats(file, 'logits', [batch, seqLen, config.vocab_size]),
    loss: floats(file, 'loss', [])[0],
    grads
  }
}

/** decodeSafetensors + readLlamaGolden. */
export function decodeLlamaGolden (bytes: Uint8Array): LlamaGolden {
  return readLlamaGolden(decodeSafetensors(bytes))
}

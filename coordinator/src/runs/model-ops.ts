import type { CodecName } from '@barnraise/protocol'
import type { RunSpec } from '@barnraise/protocol'
import type { ShardInfo } from './runs.ts'

/**
 * The coordinator's only doorway into the numeric core and the codecs: the round engine and
 * run creation compute everything through these functions.
 */
export interface ModelOps {
  encodedByteLength: (codec: CodecName, length: number) => number
  /** Decodes a pseudo-gradient, throwing on a wrong size or non-finite values. */
  decode: (codec: CodecName, bytes: Uint8Array, length: number) => Float32Array
  readCheckpoint: (config: Record<string, unknown>, bytes: Uint8Array) => Float32Array
  writeCheckpoint: (config: Record<string, unknown>, flat: Float32Array) => Uint8Array
  readVector: (bytes: Uint8Array, length: number) => Float32Array
  writeVector: (values: Float32Array) => Uint8Array
  /** Nesterov outer step on `theta` in place; returns the new momentum buffer. */
  outerStep: (theta: Float32Array, meanDelta: Float32Array, momentum: Float32Array | null, opts: { lr: number, momentum: number }) => Float32Array
  /** Mean next-token loss over fixed, evenly spaced windows of held-out tokens. */
  evaluate: (config: Record<string, unknown>, flat: Float32Array, tokens: Uint8Array | Int32Array, opts: { batches: number, batchSize: number, seqLen: number }) => number
  /** The training tokens' unigram model scored on the same validation windows as `evaluate` (nats/token): the loss to beat. */
  unigramBaseline: (train: Array<Uint8Array | Int32Array>, validation: Uint8Array | Int32Array, vocabSize: number, opts: { batches: number, batchSize: number, seqLen: number }) => number
  readShard: (bytes: Uint8Array) => Uint8Array | Int32Array
  resolveModel: (model: RunSpec['model']) => { config: Record<string, unknown>, paramCount: number, vocabSize: number }
  /**
   * A checkpoint folder's files besides model.safetensors (config.json, tokenizer files); the
   * weights file is the checkpoint blob itself, so its sha256 is the checkpoint's id.
   */
  huggingFaceTextFiles: (config: Record<string, unknown>) => Map<string, Uint8Array>
  initialCheckpoint: (config: Record<string, unknown>, seed: number) => Uint8Array
  /** The named model sizes organizers pick from. */
  presets: () => Array<{ name: string, config: Record<string, unknown>, paramCount: number }>
  /** Byte-tokenizes text and cuts it into train shards and a held-out validation shard. */
  textShards: (text: string) => { train: Array<{ bytes: Uint8Array, tokens: number }>, validation: { bytes: Uint8Array, tokens: number }, vocabSize: number }
  /** Shards (train and validation) of the shipped demo corpus. */
  demoShards: () => Promise<{ train: Array<{ bytes: Uint8Array, tokens: number }>, validation: { bytes: Uint8Array, tokens: number }, vocabSize: number }>
}

export type { ShardInfo }

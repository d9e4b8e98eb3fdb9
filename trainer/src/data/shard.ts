// Token shards: the unit of training data a coordinator stores by sha256 and nodes fetch.
// Binary layout (all little-endian), documented in trainer/README.md "Shard format":
//   0  8 bytes  magic "BRSHARD1"
//   8  u32      version (1)
//  12  u32      bytes per token: 1 (vocab ≤ 256), 2 (≤ 65536) or 4 (≤ 2^31)
//  16  u32      vocabSize
//  20  u32      reserved, 0
//  24  u64      token count
//  32  tokens   count × width bytes, nothing after
import { CodedError, sha256Hex } from '@barnraise/protocol'
import type { ShardManifest } from '@barnraise/protocol'
import { BYTE_VOCAB_SIZE, encodeBytes } from './byte-tokenizer.ts'

export const SHARD_MAGIC = 'BRSHARD1'
export const SHARD_VERSION = 1
export const SHARD_HEADER_BYTES = 32
const MAX_VOCAB = 2 ** 31

/** Decoded tokens: bytes for a byte-level vocabulary, int32 otherwise. */
export type ShardTokens = Uint8Array | Int32Array

export type ShardErrorCode = 'ERR_TRUNCATED' | 'ERR_BAD_MAGIC' | 'ERR_BAD_VERSION' | 'ERR_BAD_HEADER' | 'ERR_BAD_TOKEN' | 'ERR_BAD_OPTIONS'

/** A refused shard or shard request, with a code a caller can switch on. */
export class ShardError extends CodedError<ShardErrorCode> {}

/** Bytes per stored token for a vocabulary. */
export function tokenWidth (vocabSize: number): 1 | 2 | 4 {
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize > MAX_VOCAB) throw new ShardError('ERR_BAD_OPTIONS', `vocabSize ${vocabSize} must be an integer in 1..2^31`)
  return vocabSize <= 256 ? 1 : vocabSize <= 65536 ? 2 : 4
}

/** Writes tokens (each an integer in [0, vocabSize)) as a shard. */
export function encodeShard (tokens: ArrayLike<number>, vocabSize: number): Uint8Array {
  const width = tokenWidth(vocabSize)
  const out = new Uint8Array(SHARD_HEADER_BYTES + tokens.length * width)
  const view = new DataView(out.buffer)
  out.set(new TextEncoder().encode(SHARD_MAGIC), 0)
  view.setUint32(8, SHARD_VERSION, true)
  view.setUint32(12, width, true)
  view.setUint32(16, vocabSize, true)
  view.setBigUint64(24, BigInt(tokens.length), true)
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw new ShardError('ERR_BAD_TOKEN', `token ${i} is ${t}; tokens must be integers in [0, ${vocabSize})`)
    const at = SHARD_HEADER_BYTES + i * width
    if (width === 1) out[at] = t
    else if (width === 2) view.setUint16(at, t, true)
    else view.setUint32(at, t, true)
  }
  return out
}

/** A shard's header, checked against the bytes that follow it. */
export interface ShardHeader { vocabSize: number, width: 1 | 2 | 4, tokens: number }

/** Reads and checks a shard's header (magic, version, consistency, exact length) without reading its tokens. */
export function readShardHeader (bytes: Uint8Array): ShardHeader {
  if (bytes.byteLength < SHARD_HEADER_BYTES) throw new ShardError('ERR_TRUNCATED', `shard is ${bytes.byteLength} bytes, shorter than its ${SHARD_HEADER_BYTES}-byte header`)
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== SHARD_MAGIC) throw new ShardError('ERR_BAD_MAGIC', `not a token shard: it does not start with "${SHARD_MAGIC}"`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const version = view.getUint32(8, true)
  if (version !== SHARD_VERSION) throw new ShardError('ERR_BAD_VERSION', `shard version ${version} is not supported (this build reads version ${SHARD_VERSION})`)
  const width = view.getUint32(12, true)
  const vocabSize = view.getUint32(16, true)
  if (vocabSize < 1 || vocabSize > MAX_VOCAB || width !== tokenWidth(vocabSize) || view.getUint32(20, true) !== 0) {
    throw new ShardError('ERR_BAD_HEADER', `shard header is inconsistent: ${width}-byte tokens for vocabulary ${vocabSize}`)
  }
  const count = view.getBigUint64(24, true)
  const actual = BigInt(bytes.byteLength - SHARD_HEADER_BYTES)
  if (count * BigInt(width) !== actual) {
    throw new ShardError('ERR_TRUNCATED', `shard header promises ${count} tokens (${count * BigInt(width)} bytes) but ${actual} bytes follow; the file is truncated or padded`)
  }
  return { vocabSize, width: width as 1 | 2 | 4, tokens: Number(count) }
}

/**
 * Checks tokens `from` to `to` (exclusive) of a shard whose header `readShardHeader` accepted
 * against its vocabulary, reading them in place; throws `ERR_BAD_TOKEN` at the first one outside.
 */
export function checkShardTokens (bytes: Uint8Array, header: ShardHeader, from = 0, to = header.tokens): void {
  const { vocabSize, width } = header
  if (width === 1 && vocabSize === 256) return
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = from; i < to; i++) {
    const at = SHARD_HEADER_BYTES + width * i
    const t = width === 1 ? bytes[at]! : width === 2 ? view.getUint16(at, true) : view.getUint32(at, true)
    if (t >= vocabSize) throw new ShardError('ERR_BAD_TOKEN', `token ${i} is ${t}, outside the shard's vocabulary of ${vocabSize}`)
  }
}

/** Reads a shard, checking magic, version, header consistency, exact length and every token against the vocabulary. */
export function decodeShard (bytes: Uint8Array): { vocabSize: number, tokens: ShardTokens } {
  const header = readShardHeader(bytes)
  const { vocabSize, width, tokens: n } = header
  const body = bytes.subarray(SHARD_HEADER_BYTES)
  let tokens: ShardTokens
  if (width === 1) {
    tokens = body
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    tokens = new Int32Array(n)
    for (let i = 0; i < n; i++) tokens[i] = width === 2 ? view.getUint16(SHARD_HEADER_BYTES + 2 * i, true) : view.getUint32(SHARD_HEADER_BYTES + 4 * i, true)
  }
  if (vocabSize !== 256 || width !== 1) {
    for (let i = 0; i < n; i++) {
      if (tokens[i] >= vocabSize || tokens[i] < 0) throw new ShardError('ERR_BAD_TOKEN', `token ${i} is ${tokens[i]}, outside the shard's vocabulary of ${vocabSize}`)
    }
  }
  return { vocabSize, tokens }
}

/** Lowercase hex sha256 of some bytes (a shard's name and blob key), of any size (protocol's). */
export { sha256Hex }

/** A shard's bytes with its manifest entry. */
export interface BuiltShard { bytes: Uint8Array, manifest: ShardManifest }

export interface ShardOptions {
  /** tokens per train shard (the last one may be shorter) */
  shardTokens: number
  /** fraction of the corpus, taken from its end, held out as the validation shard; in (0, 0.5] */
  validationFraction: number
}

function built (tokens: ArrayLike<number>, vocabSize: number, name: string): BuiltShard {
  const bytes = encodeShard(tokens, vocabSize)
  return { bytes, manifest: { name, sha256: sha256Hex(bytes), tokens: tokens.length, bytes: bytes.byteLength, vocabSize } }
}

/** Splits a token stream into train shards and one validation shard holding its last `validationFraction` (deterministic). */
export function buildShardsFromTokens (tokens: ShardTokens, vocabSize: number, opts: ShardOptions): { train: BuiltShard[], validation: BuiltShard } {
  const { shardTokens, validationFraction } = opts
  if (!Number.isSafeInteger(shardTokens) || shardTokens < 1) throw new ShardError('ERR_BAD_OPTIONS', `shardTokens ${shardTokens} must be a positive integer`)
  if (!(validationFraction > 0 && validationFraction <= 0.5)) throw new ShardError('ERR_BAD_OPTIONS', `validationFraction ${validationFraction} must be in (0, 0.5]`)
  if (tokens.length < 2) throw new ShardError('ERR_BAD_OPTIONS', `a corpus of ${tokens.length} tokens is too small to split into train and validation`)
  const validationTokens = Math.max(1, Math.ceil(tokens.length * validationFraction))
  const trainEnd = tokens.length - validationTokens
  const train: BuiltShard[] = []
  for (let start = 0, i = 0; start < trainEnd; start += shardTokens, i++) {
    train.push(built(tokens.subarray(start, Math.min(start + shardTokens, trainEnd)), vocabSize, `train-${String(i).padStart(5, '0')}`))
  }
  return { train, validation: built(tokens.subarray(trainEnd), vocabSize, 'validation') }
}

/** Byte-tokenizes `text` and shards it (see buildShardsFromTokens). */
export function buildShards (text: string, opts: ShardOptions): { train: BuiltShard[], validation: BuiltShard } {
  return buildShardsFromTokens(encodeBytes(text), BYTE_VOCAB_SIZE, opts)
}

// Streams a dataset file's documents through a tokenizer into shards, holding out every Nth
// document for validation and indexing which document every train token came from.
import { encodeShard, sha256Hex } from '@barnraise/trainer'
import type { ShardManifest } from '@barnraise/protocol'
import type { TextTokenizer } from '../tokenizers/text-tokenizer.ts'
import type { DocumentReader } from '../readers/source-document.ts'
import { DatasetError } from '../dataset-error.ts'
import type { DocumentIndex, IndexedDocument } from './document-index.ts'

export interface BuildOptions {
  reader: DocumentReader
  tokenizer: TextTokenizer
  /** the uploaded file's name, for the document index */
  source: string
  /** tokens per train shard (the last may be shorter) */
  shardTokens: number
  /** every Nth document goes to validation instead of training */
  holdOutEvery: number
  /** validation stops taking documents at this many tokens */
  maxValidationTokens: number
  /** stores a finished shard (bytes and manifest) before the build goes on */
  onShard: (bytes: Uint8Array, manifest: ShardManifest, split: 'train' | 'validation') => Promise<void>
  /**
   * Takes each trained document, in stream order, instead of the result's index holding it: an
   * index of tens of millions of small documents then never sits in memory (the ingest worker
   * streams it to disk). The result's `index.documents` is then empty.
   */
  onDocument?: (locator: string, start: number, end: number) => Promise<void> | undefined
  onProgress?: (progress: BuildProgress) => void
}

export interface BuildProgress {
  bytesRead: number
  bytesTotal: number
  documents: number
  badRows: number
  trainTokens: number
  validationTokens: number
}

export interface BuildResult extends BuildProgress {
  /** the first few bad rows, with why */
  badRowExamples: Array<{ locator: string, reason: string }>
  train: ShardManifest[]
  validation: ShardManifest
  /** the document index; its `documents` are empty when `onDocument` took them */
  index: DocumentIndex
  /** how many documents the index lists */
  indexDocuments: number
}

/** Shard sizes for uploads: 1 Mi tokens (2–4 MiB) per train shard, every 50th document held out, at most 1 Mi validation tokens. */
export const UPLOAD_BUILD_DEFAULTS = { shardTokens: 1024 * 1024, holdOutEvery: 50, maxValidationTokens: 1024 * 1024 } as const

const MAX_EXAMPLES = 20

/** A growable int32 buffer of tokens. */
class TokenBuffer {
  data = new Int32Array(1 << 16)
  length = 0
  push (ids: ArrayLike<number>): void {
    if (this.length + ids.length > this.data.length) {
      const next = new Int32Array(Math.max(this.data.length * 2, this.length + ids.length))
      next.set(this.data.subarray(0, this.length))
      this.data = next
    }
    this.data.set(ids, this.length)
    this.length += ids.length
  }

  /** Removes and returns the first `n` tokens. */
  take (n: number): Int32Array {
    const out = this.data.slice(0, n)
    this.data.copyWithin(0, n, this.length)
    this.length -= n
    return out
  }
}

/** Builds a dataset; refuses (ERR_TOO_FEW_DOCUMENTS) one with no document to train on or none to hold out. */
export async function buildDataset (opts: BuildOptions): Promise<BuildResult> {
  const { reader, tokenizer } = opts
  if (!Number.isSafeInteger(opts.shardTokens) || opts.shardTokens < 1) throw new DatasetError('ERR_BAD_OPTIONS', 'shardTokens must be a positive integer')
  if (!Number.isSafeInteger(opts.holdOutEvery) || opts.holdOutEvery < 2) throw new DatasetError('ERR_BAD_OPTIONS', 'holdOutEvery must be an integer of at least 2')
  const separator = tokenizer.eosId !== null ? [tokenizer.eosId] : Array.from(tokenizer.encode('\n\n'))
  const train = new TokenBuffer()
  const validation = new TokenBuffer()
  const trainShards: ShardManifest[] = []
  const documents: IndexedDocument[] = []
  const onDocument = opts.onDocument ?? ((locator: string, start: number, end: number): undefined => { documents.push([locator, start, end]) })
  let indexed = 0
  const heldOut: string[] = []
  const examples: BuildResult['badRowExamples'] = []
  let streamAt = 0
  let seen = 0
  let badRows = 0
  let validationFull = false
  const progress = (): BuildProgress => ({ bytesRead: reader.bytesRead(), bytesTotal: reader.bytesTotal, documents: seen, badRows, trainTokens: streamAt, validationTokens: validation.length })
  const flushTrain = async (count: number): Promise<void> => {
    const tokens = train.take(count)
    const bytes = encodeShard(tokens, tokenizer.vocabSize)
    const manifest: ShardManifest = { name: `train-${String(trainShards.length).padStart(5, '0')}`, sha256: sha256Hex(bytes), tokens: tokens.length, bytes: bytes.byteLength, vocabSize: tokenizer.vocabSize }
    await opts.onShard(bytes, manifest, 'train')
    trainShards.push(manifest)
  }
  let lastReport = 0
  for await (const item of reader.items()) {
    if (item.kind === 'bad') {
      badRows++
      if (examples.length < MAX_EXAMPLES) examples.push({ locator: item.locator, reason: item.reason })
      continue
    }
    seen++
    const ids = tokenizer.encode(item.text)
    if (ids.length === 0) continue
    if (seen % opts.holdOutEvery === 0 && !validationFull) {
      validation.push(ids)
      validation.push(separator)
      heldOut.push(item.locator)
      validationFull = validation.length >= opts.maxValidationTokens
    } else {
      // Awaited only when the taker asks (a full buffer to write): most documents cost no turn.
      const taking = onDocument(item.locator, streamAt, streamAt + ids.length)
      if (taking !== undefined) await taking
      indexed++
      train.push(ids)
      train.push(separator)
      streamAt += ids.length + separator.length
      while (train.length >= opts.shardTokens) await flushTrain(opts.shardTokens)
    }
    const now = Date.now()
    if (opts.onProgress !== undefined && now - lastReport > 250) { lastReport = now; opts.onProgress(progress()) }
  }
  if (train.length > 0) await flushTrain(train.length)
  if (indexed === 0) throw new DatasetError('ERR_TOO_FEW_DOCUMENTS', `no document to train on (${badRows} bad rows${examples[0] !== undefined ? `; first: ${examples[0].locator}: ${examples[0].reason}` : ''})`)
  if (validation.length === 0) throw new DatasetError('ERR_TOO_FEW_DOCUMENTS', `the file has ${seen} documents; every ${opts.holdOutEvery}th is held out for validation, so it needs at least ${opts.holdOutEvery}`)
  const vTokens = validation.take(validation.length)
  const vBytes = encodeShard(vTokens, tokenizer.vocabSize)
  const vManifest: ShardManifest = { name: 'validation', sha256: sha256Hex(vBytes), tokens: vTokens.length, bytes: vBytes.byteLength, vocabSize: tokenizer.vocabSize }
  await opts.onShard(vBytes, vManifest, 'validation')
  const final = { ...progress(), bytesRead: reader.bytesTotal, validationTokens: vTokens.length }
  opts.onProgress?.(final)
  return {
    ...final,
    badRowExamples: examples,
    train: trainShards,
    validation: vManifest,
    index: { format: 'barnraise-documents-v1', source: opts.source, tokenizer: tokenizer.name, shards: trainShards.map((s) => ({ sha256: s.sha256, tokens: s.tokens })), documents, heldOut },
    indexDocuments: indexed
  }
}

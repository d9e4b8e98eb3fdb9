import type { Kysely } from 'kysely'
import type { CheckedDocumentIndex } from '@barnraise/datasets'
import type { LlamaConfig, RunSpec } from '@barnraise/protocol'
import { MAX_URL_SHARD_BYTES, fetchShardBytes, parseLlamaConfig, shardUrlRefusal } from '@barnraise/protocol'
import { countParams, demoCorpusShards, initialCheckpointChunks, modelPresets, presetConfig } from '@barnraise/trainer'
import { loadTokenizer } from '../datasets/run-tokenizers.ts'
import { assertDataRoom, dataAmount, withDataQuota } from '../datasets/data-storage.ts'
import type { DataQuota } from '../datasets/data-storage.ts'
import { documentIndexes } from '../datasets/document-indexes.ts'
import { checkFetchedShard } from '../datasets/fetched-shard.ts'
import type { Database } from '../db/schema.ts'
import { sha256HexInSlices } from '../blobs/blob-store.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { storeBlob, storedBy } from '../blobs/blob-records.ts'
import type { ShardInfo } from './runs.ts'

/** Where a run's model, dataset and initial checkpoint are resolved and stored. */
export interface RunStore { db: Kysely<Database>, blobs: BlobStore }

/** The named model sizes organizers pick from, with parameter counts. */
export function modelPresetList (): Array<{ name: string, config: LlamaConfig, paramCount: number }> {
  return Object.entries(modelPresets).map(([name, config]) => ({ name, config: { ...config }, paramCount: countParams(config) }))
}

/**
 * A spec's model as a full config: a named preset or a config.json, validated. A preset's
 * vocabulary follows the tokenizer (`vocabSize`, when given); a config.json's is its own.
 */
export function resolveModel (model: RunSpec['model'], vocabSize?: number): { config: LlamaConfig, paramCount: number } {
  const config = 'preset' in model ? { ...presetConfig(model.preset), ...(vocabSize !== undefined ? { vocab_size: vocabSize } : {}) } : parseLlamaConfig(model.config)
  return { config: { ...config }, paramCount: countParams(config) }
}

/** The largest document index a URL dataset may name (one uploaded here has no such cap: the coordinator wrote it). */
export const MAX_DOCUMENT_INDEX_BYTES = 256 * 1024 * 1024

/** A spec's dataset, resolved: its shards, the vocabulary they use, the tokenizer that made them and (for uploaded datasets) its document index. */
export interface ResolvedDataset { train: ShardInfo[], validation: ShardInfo, vocabSize: number, tokenizer: string, documentIndex: string | null }

/**
 * What a run can know now of an uploaded dataset still uploading or tokenizing: its tokenizer
 * and vocabulary, no shards yet (the run waits for them: runs/awaiting-data.ts). Null when the
 * spec names no such dataset; `resolveDataset` then resolves it, or says why it cannot.
 */
export async function pendingDataset (store: RunStore, dataset: RunSpec['dataset'], user?: DatasetUser): Promise<ResolvedDataset | null> {
  if (dataset.source !== 'dataset') return null
  const row = await store.db.selectFrom('datasets').select(['status', 'tokenizer', 'created_by']).where('id', '=', dataset.id).executeTakeFirst()
  if (row === undefined || !mayUseDataset(row, user)) return null
  if (row.status !== 'uploading' && row.status !== 'tokenizing') return null
  const { vocabSize } = await loadTokenizer(store, row.tokenizer)
  return { train: [], validation: { sha256: '', tokens: 0 }, vocabSize, tokenizer: row.tokenizer, documentIndex: null }
}

/** Who launches a run, for the datasets it may name: an uploaded dataset is its uploader's (admins may name any). Absent: the coordinator itself or its operator. */
export interface DatasetUser { id: string, admin: boolean }

function mayUseDataset (row: { created_by: string }, user: DatasetUser | undefined): boolean {
  return user === undefined || user.admin || row.created_by === user.id
}

/** A spec's dataset as stored shards: the demo corpus (sharded and stored on first use), shards already uploaded, or a tokenized dataset. */
export async function resolveDataset (store: RunStore, dataset: RunSpec['dataset'], options: { allowPrivateShardUrls?: boolean, owner?: FetchedDataOwner, user?: DatasetUser } = {}): Promise<ResolvedDataset> {
  const { db, blobs } = store
  if (dataset.source === 'urls') return await resolveUrlDataset(store, dataset, options.allowPrivateShardUrls === true, options.owner ?? null)
  if (dataset.source === 'dataset') {
    const row = await db.selectFrom('datasets').selectAll().where('id', '=', dataset.id).executeTakeFirst()
    // Another organizer's dataset is answered as one that does not exist: its id says nothing.
    if (row === undefined || !mayUseDataset(row, options.user)) throw new Error(`no dataset ${dataset.id} on this coordinator`)
    if (row.status !== 'ready' || row.validation_shard === null) throw new Error(`dataset "${row.name}" is ${row.status}${row.error !== null ? ` (${row.error})` : ''}; a run needs a tokenized dataset`)
    const validationRow = await db.selectFrom('blobs').select('meta').where('sha256', '=', row.validation_shard).executeTakeFirstOrThrow()
    return {
      train: row.train_shards,
      validation: { sha256: row.validation_shard, tokens: Number(validationRow.meta.tokens) },
      vocabSize: Number(validationRow.meta.vocabSize),
      tokenizer: row.tokenizer,
      documentIndex: row.document_index
    }
  }
  if (dataset.source === 'demo-corpus') {
    const shards = await demoCorpusShards()
    const train: ShardInfo[] = []
    for (const s of shards.train) {
      train.push({ sha256: await storeBlob(db, blobs, s.bytes, 'shard', { tokens: s.tokens.length, vocabSize: shards.vocabSize }), tokens: s.tokens.length })
    }
    const v = shards.validation
    const validation = { sha256: await storeBlob(db, blobs, v.bytes, 'shard', { tokens: v.tokens.length, vocabSize: shards.vocabSize, split: 'validation' }), tokens: v.tokens.length }
    return { train, validation, vocabSize: shards.vocabSize, tokenizer: 'byte', documentIndex: null }
  }
  // One query for every hash (in chunks), not one each at once: a spec names up to
  // MAX_TRAIN_SHARDS, and a query apiece held the whole pool while it ran.
  const wanted = [...new Set([...dataset.train, dataset.validation])]
  const rows = new Map<string, { kind: string, meta: Record<string, unknown> }>()
  for (let i = 0; i < wanted.length; i += SHARD_LOOKUP_CHUNK) {
    const found = await db.selectFrom('blobs').select(['sha256', 'kind', 'meta']).where('sha256', 'in', wanted.slice(i, i + SHARD_LOOKUP_CHUNK)).execute()
    for (const row of found) rows.set(row.sha256, row)
  }
  const lookup = (sha: string): ShardInfo & { vocabSize: number, tokenizer: string } => {
    const row = rows.get(sha)
    // Shards someone uploaded are for those who uploaded them, like datasets (runs publish their
    // hashes); the demo corpus's are anyone's.
    const user = options.user
    const mayUse = row === undefined || typeof row.meta.uploadedBy !== 'string' || user === undefined || user.admin || storedBy(row.meta, user.id)
    if (row?.kind !== 'shard' || !mayUse) {
      throw new Error(`shard ${sha} is not in this coordinator's blob store; upload its text first`)
    }
    return { sha256: sha, tokens: Number(row.meta.tokens), vocabSize: Number(row.meta.vocabSize), tokenizer: typeof row.meta.tokenizer === 'string' ? row.meta.tokenizer : 'byte' }
  }
  const train = dataset.train.map(lookup)
  const validation = lookup(dataset.validation)
  const tokenizers = new Set([validation, ...train].map((s) => s.tokenizer))
  if (tokenizers.size > 1) throw new Error(`the shards were made by different tokenizers (${[...tokenizers].join(', ')}); a run's shards must share one`)
  return { train, validation, vocabSize: Math.max(validation.vocabSize, ...train.map((s) => s.vocabSize)), tokenizer: validation.tokenizer, documentIndex: null }
}

/** Hashes looked up in one query when a spec names stored shards (well under Postgres's 65,535 parameters). */
export const SHARD_LOOKUP_CHUNK = 1000

/** Who a URL dataset's fetched files are stored for, and the room they have (`--dataset-quota-mb`, `--user-dataset-quota-mb`). */
export interface FetchedDataOwner { uploadedBy: string, quota: DataQuota }

/**
 * A manifest of shard URLs: the tokenizer must be known here; the validation shard is fetched,
 * checked against its sha256 and stored (the coordinator evaluates on it), and so is the
 * document index when the manifest names one; train shards stay where they are, and agents
 * fetch and check them. What is stored for an organizer counts against the dataset quota.
 */
async function resolveUrlDataset (store: RunStore, dataset: Extract<RunSpec['dataset'], { source: 'urls' }>, allowPrivate: boolean, owner: FetchedDataOwner | null): Promise<ResolvedDataset> {
  for (const s of [...dataset.train, dataset.validation]) {
    const refusal = shardUrlRefusal(s.url, allowPrivate)
    if (refusal !== null) throw new Error(refusal)
  }
  const tokenizer = await loadTokenizer(store, dataset.tokenizer)
  let bytes: Uint8Array
  try {
    bytes = await fetchShardBytes(dataset.validation.url, MAX_URL_SHARD_BYTES, { signal: AbortSignal.timeout(60_000), allowPrivate })
  } catch (err) {
    throw new Error(`the validation shard could not be fetched: ${(err as Error).message}`)
  }
  // Hashed once, here: the store takes the sha256 computed in the check.
  const { header: decoded, sha256: validationSha } = await checkFetchedShard(bytes, dataset.validation.sha256, dataset.validation.url)
  if (decoded.vocabSize !== tokenizer.vocabSize) throw new Error(`the shards use a vocabulary of ${decoded.vocabSize} but tokenizer ${dataset.tokenizer} has ${tokenizer.vocabSize}`)
  const index = dataset.documents === undefined ? null : await fetchDocumentIndex(dataset, allowPrivate)
  const indexSha = index === null ? undefined : await sha256HexInSlices(index.gzipped)
  const uploadedBy = owner === null ? {} : { uploadedBy: owner.uploadedBy }
  const { documentIndex, validation } = await withDataQuota(store.db, async () => {
    if (owner !== null) {
      const added = await newBytes(store.db, [{ sha256: validationSha, size: bytes.byteLength }, ...(index === null || indexSha === undefined ? [] : [{ sha256: indexSha, size: index.gzipped.byteLength }])])
      // Room held by uploads in progress is not free.
      await assertDataRoom(store.db, owner.quota, { userId: owner.uploadedBy, bytes: added, what: `storing this dataset's validation shard${index === null ? '' : ' and document index'} takes ${dataAmount(added)}` })
    }
    const documentIndex = index === null ? null : await storeBlob(store.db, store.blobs, index.gzipped, 'documents', { source: index.source, documents: index.documents, url: dataset.documents!.url, ...uploadedBy }, indexSha)
    const validation = { sha256: await storeBlob(store.db, store.blobs, bytes, 'shard', { tokens: decoded.tokens, vocabSize: decoded.vocabSize, tokenizer: dataset.tokenizer, split: 'validation', ...uploadedBy }, validationSha), tokens: decoded.tokens }
    return { documentIndex, validation }
  })
  return { train: dataset.train.map((s) => ({ sha256: s.sha256, tokens: s.tokens, url: s.url })), validation, vocabSize: decoded.vocabSize, tokenizer: dataset.tokenizer, documentIndex }
}

/** Bytes of `blobs` not stored yet (a blob already here, uploaded or fetched before, takes no more room). */
async function newBytes (db: Kysely<Database>, blobs: Array<{ sha256: string, size: number }>): Promise<number> {
  const present = new Set((await db.selectFrom('blobs').select('sha256').where('sha256', 'in', blobs.map((b) => b.sha256)).execute()).map((r) => r.sha256))
  return blobs.filter((b) => !present.has(b.sha256)).reduce((n, b) => n + b.size, 0)
}

/**
 * A URL dataset's document index: fetched, then checked on the document-index worker (its
 * sha256, its format, the manifest's train shards in order and tokenizer, documents sorted and
 * in range; a large index takes seconds to parse) and gzipped for storage, as an uploaded
 * dataset's is, so documents.json and the model card work alike.
 */
async function fetchDocumentIndex (dataset: Extract<RunSpec['dataset'], { source: 'urls' }>, allowPrivate: boolean): Promise<CheckedDocumentIndex> {
  const where = dataset.documents!
  const refusal = shardUrlRefusal(where.url, allowPrivate)
  if (refusal !== null) throw new Error(refusal)
  let bytes: Uint8Array
  try {
    bytes = await fetchShardBytes(where.url, MAX_DOCUMENT_INDEX_BYTES, { signal: AbortSignal.timeout(120_000), allowPrivate })
  } catch (err) {
    throw new Error(`the document index could not be fetched: ${(err as Error).message}`)
  }
  return await documentIndexes.check(bytes, { url: where.url, sha256: where.sha256, tokenizer: dataset.tokenizer, shards: dataset.train })
}

/**
 * Stores a run's round-0 checkpoint, made on a worker thread (a large model takes tens of
 * seconds) and written to the blob store a slice at a time as it comes: the coordinator never
 * holds the model, whose memory would stay with the process for good (a worker's malloc arenas
 * kept 0.9× of it). Returns its sha256; `signal` stops it, leaving nothing stored.
 */
export async function storeInitialCheckpoint (store: RunStore, config: LlamaConfig, seed: number, signal?: AbortSignal): Promise<string> {
  return await storeBlob(store.db, store.blobs, initialCheckpointChunks(config, seed, { signal }), 'checkpoint', { initial: true })
}

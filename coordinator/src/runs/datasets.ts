import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import { assertDataRoom, dataAmount, withDataQuota } from '../datasets/data-storage.ts'
import type { DataQuota } from '../datasets/data-storage.ts'
import { CoordinatorError } from '../errors.ts'
import { DEMO_SHARD_OPTIONS, buildShards } from '@barnraise/trainer'
import { MAX_DATASET_UPLOAD_BYTES } from '@barnraise/protocol'

/** Most text one upload may carry (shared with the dashboard's form). */
export const MAX_UPLOAD_BYTES = MAX_DATASET_UPLOAD_BYTES

const MIB = 1024 * 1024

/** Sharding runs on the coordinator's own thread: one upload at a time, the others told to retry. */
let sharding = false

/** One web upload: its dataset name, its text files and who sent them. */
export interface DatasetUpload {
  name: string
  files: Array<{ name: string, text: string }>
  uploadedBy: string
}

/**
 * Turns uploaded text files into stored shards a run spec can name. Refused when another
 * upload is being sharded (`ERR_BUSY`) or when the shards do not fit the install's dataset quota
 * or the uploader's share of it (`ERR_QUOTA_EXCEEDED`); a refused upload stores nothing.
 */
export async function shardUploadedText (deps: { db: Kysely<Database>, blobs: BlobStore }, upload: DatasetUpload, quota: DataQuota = { datasetQuotaBytes: Infinity }) {
  const text = upload.files.map((f) => f.text).join('\n\n')
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_UPLOAD_BYTES) throw new CoordinatorError('ERR_INVALID_INPUT', `the files hold ${(bytes / MIB).toFixed(1)} MiB; one upload takes at most ${MAX_UPLOAD_BYTES / MIB} MiB`)
  if (bytes < 4096) throw new CoordinatorError('ERR_INVALID_INPUT', 'the files hold under 4 KiB of text; a run needs more to train and to hold some out for validation')
  if (sharding) throw new CoordinatorError('ERR_BUSY', 'another dataset upload is being sharded; try again in a moment')
  sharding = true
  try {
    return await withDataQuota(deps.db, async () => await storeShards(deps, upload, text, quota))
  } finally {
    sharding = false
  }
}

async function storeShards (deps: { db: Kysely<Database>, blobs: BlobStore }, upload: DatasetUpload, text: string, quota: DataQuota) {
  const { name, uploadedBy } = upload
  // Byte tokens: every id is below 256.
  const vocabSize = 256
  const shards = buildShards(text, DEMO_SHARD_OPTIONS)
  const newBytes = shards.train.reduce((sum, s) => sum + s.bytes.byteLength, shards.validation.bytes.byteLength)
  await assertDataRoom(deps.db, quota, { userId: uploadedBy, bytes: newBytes, what: `this upload makes ${dataAmount(newBytes)} of shards` })
  const train: string[] = []
  const named = new Set<string>()
  let tokens = 0
  for (const s of shards.train) {
    const sha = await storeBlob(deps.db, deps.blobs, s.bytes, 'shard', { tokens: s.manifest.tokens, vocabSize, dataset: name, uploadedBy })
    // Two byte-identical shards (repeated text) are one shard: a run names each shard once.
    if (named.has(sha)) continue
    named.add(sha)
    train.push(sha)
    tokens += s.manifest.tokens
  }
  const v = shards.validation
  const validation = await storeBlob(deps.db, deps.blobs, v.bytes, 'shard', { tokens: v.manifest.tokens, vocabSize, dataset: name, split: 'validation', uploadedBy })
  return { name, train, validation, trainTokens: tokens, validationTokens: v.manifest.tokens, files: upload.files.map((f) => f.name) }
}

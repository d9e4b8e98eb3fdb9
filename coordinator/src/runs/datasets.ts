import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import { CoordinatorError } from '../errors.ts'
import { DEMO_SHARD_OPTIONS, buildShards } from '@barnraise/trainer'

/** Most text one upload may carry; bigger corpora are sharded offline with `barnraise-agent shard`. */
export const MAX_UPLOAD_BYTES = 8 * 1024 * 1024

/** Turns uploaded text files into stored shards a run spec can name. */
export async function shardUploadedText (deps: { db: Kysely<Database>, blobs: BlobStore }, name: string, files: Array<{ name: string, text: string }>) {
  const text = files.map((f) => f.text).join('\n\n')
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_UPLOAD_BYTES) throw new CoordinatorError('ERR_INVALID_INPUT', `the files hold ${(bytes / 1048576).toFixed(1)} MiB; one upload takes at most ${MAX_UPLOAD_BYTES / 1048576} MiB`)
  if (bytes < 4096) throw new CoordinatorError('ERR_INVALID_INPUT', 'the files hold under 4 KiB of text; a run needs more to train and to hold some out for validation')
  // Byte tokens: every id is below 256.
  const vocabSize = 256
  const shards = buildShards(text, DEMO_SHARD_OPTIONS)
  const train: string[] = []
  let tokens = 0
  for (const s of shards.train) {
    train.push(await storeBlob(deps.db, deps.blobs, s.bytes, 'shard', { tokens: s.manifest.tokens, vocabSize, dataset: name }))
    tokens += s.manifest.tokens
  }
  const v = shards.validation
  const validation = await storeBlob(deps.db, deps.blobs, v.bytes, 'shard', { tokens: v.manifest.tokens, vocabSize, dataset: name, split: 'validation' })
  return { name, train, validation, trainTokens: tokens, validationTokens: v.manifest.tokens, files: files.map((f) => f.name) }
}

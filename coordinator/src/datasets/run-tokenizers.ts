import type { Kysely } from 'kysely'
import { DatasetError, TOKENIZER_CATALOG, catalogTokenizer, previewUploadedTokenizer, uploadedTokenizer, MAX_TOKENIZER_JSON_BYTES } from '@barnraise/datasets'
import type { TextTokenizer, TokenizerPreview } from '@barnraise/datasets'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import { CoordinatorError } from '../errors.ts'
import { assertDataRoom, dataAmount, withDataQuota } from './data-storage.ts'
import type { DataQuota } from './data-storage.ts'

const SHA_NAME = /^sha256:([0-9a-f]{64})$/
/** Loaded tokenizers, most recently used last; a BPE vocabulary can take tens of MB, so few are kept. */
const loaded = new Map<string, TextTokenizer>()
const KEEP_LOADED = 8

function remember (tokenizer: TextTokenizer): void {
  loaded.delete(tokenizer.name)
  loaded.set(tokenizer.name, tokenizer)
  if (loaded.size > KEEP_LOADED) loaded.delete(loaded.keys().next().value!)
}

/** The tokenizer a dataset or run names: a catalogue entry, or an uploaded tokenizer.json blob (loaded once per process). */
export async function loadTokenizer (deps: { db: Kysely<Database>, blobs: BlobStore }, name: string): Promise<TextTokenizer> {
  const cached = loaded.get(name)
  if (cached !== undefined) { remember(cached); return cached }
  const sha = SHA_NAME.exec(name)?.[1]
  let tokenizer: TextTokenizer
  if (sha === undefined) {
    if (!TOKENIZER_CATALOG.some((e) => e.name === name)) throw new CoordinatorError('ERR_INVALID_INPUT', `no tokenizer called "${name}"; choose one of ${TOKENIZER_CATALOG.map((e) => e.name).join(', ')} or upload a tokenizer.json`)
    tokenizer = catalogTokenizer(name)
  } else {
    const row = await deps.db.selectFrom('blobs').select('kind').where('sha256', '=', sha).executeTakeFirst()
    if (row?.kind !== 'tokenizer') throw new CoordinatorError('ERR_NOT_FOUND', `no uploaded tokenizer ${name} on this coordinator`)
    tokenizer = uploadedTokenizer(await deps.blobs.get(sha))
  }
  remember(tokenizer)
  return tokenizer
}

/**
 * What a tokenizer makes of a sample (the upload form's preview). An uploaded tokenizer runs on a
 * worker thread with a deadline (datasets' previewUploadedTokenizer): its patterns are its
 * uploader's, and one that backtracks without end on the sample froze the coordinator's event
 * loop for everyone.
 */
export async function previewTokenizer (deps: { db: Kysely<Database>, blobs: BlobStore }, name: string, text: string): Promise<TokenizerPreview> {
  const sha = SHA_NAME.exec(name)?.[1]
  // An empty sample (the form asking for the vocabulary size) runs no pattern.
  if (sha === undefined || text === '') {
    const tokenizer = await loadTokenizer(deps, name)
    const ids = Array.from(tokenizer.encode(text))
    return { name: tokenizer.name, vocabSize: tokenizer.vocabSize, ids, pieces: ids.map((id) => tokenizer.decode([id])) }
  }
  const row = await deps.db.selectFrom('blobs').select('kind').where('sha256', '=', sha).executeTakeFirst()
  if (row?.kind !== 'tokenizer') throw new CoordinatorError('ERR_NOT_FOUND', `no uploaded tokenizer ${name} on this coordinator`)
  try {
    return await previewUploadedTokenizer(sha, async () => await deps.blobs.get(sha), text)
  } catch (err) {
    if (err instanceof DatasetError) throw new CoordinatorError(err.code === 'ERR_BUSY' ? 'ERR_BUSY' : 'ERR_INVALID_INPUT', err.message)
    throw err
  }
}

/** Checks an uploaded tokenizer.json and stores it; returns the name runs and datasets use for it. */
export async function storeUploadedTokenizer (deps: { db: Kysely<Database>, blobs: BlobStore }, bytes: Uint8Array, uploadedBy: string, quota: DataQuota): Promise<{ name: string, vocabSize: number }> {
  if (bytes.byteLength > MAX_TOKENIZER_JSON_BYTES) throw new CoordinatorError('ERR_INVALID_INPUT', `a tokenizer.json may be at most ${MAX_TOKENIZER_JSON_BYTES / 1024 / 1024} MiB`)
  const tokenizer = await withDataQuota(deps.db, async () => {
    await assertDataRoom(deps.db, quota, { userId: uploadedBy, bytes: bytes.byteLength, what: `this tokenizer is ${dataAmount(bytes.byteLength)}` })
    let parsed: TextTokenizer
    try {
      parsed = uploadedTokenizer(bytes)
    } catch (err) {
      throw new CoordinatorError('ERR_INVALID_INPUT', (err as Error).message)
    }
    await storeBlob(deps.db, deps.blobs, bytes, 'tokenizer', { uploadedBy, vocabSize: parsed.vocabSize })
    return parsed
  })
  remember(tokenizer)
  return { name: tokenizer.name, vocabSize: tokenizer.vocabSize }
}

import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { BlobKind, Database } from '../db/schema.ts'
import { byteLengthOf, isBlobSource } from './blob-store.ts'
import type { BlobBytes, BlobStore, ComputedSha256 } from './blob-store.ts'

/**
 * Stores bytes and records what they are, so the blob protocol knows what it may serve. The
 * first to store a blob is its `uploadedBy`; anyone who stores the same bytes later joins its
 * `uploaders` (they hold the bytes too, so they may use them: runs/run-resolution.ts).
 * `sha256`, the bytes' own as the caller just computed it, is not computed again.
 */
export async function storeBlob (db: Kysely<Database>, store: BlobStore, bytes: BlobBytes, kind: BlobKind, meta: Record<string, unknown> = {}, sha256?: ComputedSha256): Promise<string> {
  let size = 0
  // A source's size is known once it has been read: counted as the store reads it.
  const counted = isBlobSource(bytes) ? (async function * () { for await (const chunk of bytes) { size += chunk.byteLength; yield chunk } })() : bytes
  const sha = await store.put(counted, sha256)
  if (!isBlobSource(bytes)) size = byteLengthOf(bytes)
  const inserted = await db.insertInto('blobs')
    .values({ sha256: sha, size, kind, meta: JSON.stringify(meta) })
    .onConflict((oc) => oc.column('sha256').doNothing())
    .returning('sha256')
    .executeTakeFirst()
  if (inserted === undefined && typeof meta.uploadedBy === 'string') {
    const who = meta.uploadedBy
    await db.updateTable('blobs')
      .set({ meta: sql<string>`jsonb_set(meta, '{uploaders}', coalesce(meta->'uploaders', '[]'::jsonb) || to_jsonb(${who}::text))` })
      .where('sha256', '=', sha)
      .where(sql<boolean>`coalesce(meta->>'uploadedBy', '') <> ${who}`)
      .where(sql<boolean>`not (coalesce(meta->'uploaders', '[]'::jsonb) ? ${who})`)
      .execute()
  }
  return sha
}

/** Whether `userId` stored these bytes (first or later), from a blob's meta. */
export function storedBy (meta: Record<string, unknown>, userId: string): boolean {
  return meta.uploadedBy === userId || (Array.isArray(meta.uploaders) && meta.uploaders.includes(userId))
}

/** The kind of a recorded blob, or undefined when unknown. */
export async function blobKind (db: Kysely<Database>, sha256: string): Promise<BlobKind | undefined> {
  const row = await db.selectFrom('blobs').select('kind').where('sha256', '=', sha256).executeTakeFirst()
  return row?.kind
}

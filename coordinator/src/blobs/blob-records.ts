import type { Kysely } from 'kysely'
import type { BlobKind, Database } from '../db/schema.ts'
import type { BlobStore } from './blob-store.ts'

/** Stores bytes and records what they are, so the blob protocol knows what it may serve. */
export async function storeBlob (db: Kysely<Database>, store: BlobStore, bytes: Uint8Array, kind: BlobKind, meta: Record<string, unknown> = {}): Promise<string> {
  const sha = await store.put(bytes)
  await db.insertInto('blobs')
    .values({ sha256: sha, size: bytes.byteLength, kind, meta: JSON.stringify(meta) })
    .onConflict((oc) => oc.column('sha256').doNothing())
    .execute()
  return sha
}

/** The kind of a recorded blob, or undefined when unknown. */
export async function blobKind (db: Kysely<Database>, sha256: string): Promise<BlobKind | undefined> {
  const row = await db.selectFrom('blobs').select('kind').where('sha256', '=', sha256).executeTakeFirst()
  return row?.kind
}

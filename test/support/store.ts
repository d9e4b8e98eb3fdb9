import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import { openDatabase } from '../../coordinator/src/db/open-database.ts'
import type { Database } from '../../coordinator/src/db/schema.ts'
import { DiskBlobStore } from '../../coordinator/src/blobs/blob-store.ts'
import { createTestDatabase } from './postgres.ts'

/**
 * A fresh, migrated database on the test Postgres and a blob store in a temp folder, for unit
 * tests of coordinator code that reads and writes both; `close` removes everything.
 */
export async function openTestStore (name: string): Promise<{ db: Kysely<Database>, blobs: DiskBlobStore, close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `barnraise-${name}-`))
  const fresh = await createTestDatabase()
  const database = await openDatabase({ dataDir: dir, databaseUrl: fresh.url })
  return {
    db: database.db,
    blobs: new DiskBlobStore(join(dir, 'blobs')),
    close: async () => { await database.close(); await fresh.drop(); await rm(dir, { recursive: true, force: true }) }
  }
}

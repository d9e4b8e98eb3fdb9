import type { Kysely } from 'kysely'
import { openDatabase } from '../../coordinator/src/db/open-database.ts'
import type { Database } from '../../coordinator/src/db/schema.ts'
import { createTestDatabase } from './postgres.ts'

/** A database a test opens on one backend, migrated to the latest; `close` removes it. */
export interface Backend { name: 'pglite' | 'postgres', open: () => Promise<{ db: Kysely<Database>, close: () => Promise<void> }> }

/** Both backends the coordinator runs on: embedded PGlite in memory, and a fresh database on the test Postgres. */
export const BACKENDS: Backend[] = [
  {
    name: 'pglite',
    open: async () => {
      const opened = await openDatabase({ dataDir: 'memory://' })
      return { db: opened.db, close: opened.close }
    }
  },
  {
    name: 'postgres',
    open: async () => {
      const fresh = await createTestDatabase()
      const opened = await openDatabase({ dataDir: 'unused', databaseUrl: fresh.url })
      return { db: opened.db, close: async () => { await opened.close(); await fresh.drop() } }
    }
  }
]

/** The migration that comes before `name`, which a migration's test goes back to. */
export function migrationBefore (names: string[], name: string): string {
  const sorted = [...names].sort()
  const at = sorted.indexOf(name)
  if (at < 1) throw new Error(`no migration before ${name}`)
  return sorted[at - 1]!
}

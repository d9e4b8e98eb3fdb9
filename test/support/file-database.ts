import { afterAll, beforeAll } from 'vitest'
import type { Kysely } from 'kysely'
import { openDatabase } from '../../coordinator/src/db/open-database.ts'
import type { Database } from '../../coordinator/src/db/schema.ts'

/**
 * An embedded in-memory database (PGlite, migrated) shared by one test file's tests: opened
 * before the first, closed after the last. Call at the file's top level; read `.db` in tests.
 */
export function databaseForFile (): { readonly db: Kysely<Database> } {
  let opened: Awaited<ReturnType<typeof openDatabase>> | undefined
  beforeAll(async () => { opened = await openDatabase({ dataDir: 'memory://' }) })
  afterAll(async () => { await opened?.close() })
  return {
    get db (): Kysely<Database> {
      if (opened === undefined) throw new Error('the file\'s database is opened in beforeAll; read .db inside a test')
      return opened.db
    }
  }
}

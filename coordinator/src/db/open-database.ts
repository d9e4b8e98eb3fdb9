import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Kysely, PostgresDialect } from 'kysely'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { migrateToLatest } from '@barnraise/migrations'
import { PGliteDialect } from './pglite-dialect.ts'
import type { Database } from './schema.ts'

// bigint columns hold token counts and sequence numbers, far below 2^53: read them as numbers.
const INT8_OID = 20
pg.types.setTypeParser(INT8_OID, (v: string) => Number(v))

export interface OpenDatabaseOptions {
  /** A Postgres connection string; when absent, PGlite in `dataDir` is used. */
  databaseUrl?: string
  /** Where embedded PGlite keeps its files; `memory://` for a throwaway database. */
  dataDir: string
  /** Told when Postgres drops an idle connection (a server restart, an admin's terminate); the pool reconnects on its next query. */
  onIdleError?: (err: Error) => void
}

export interface OpenedDatabase {
  db: Kysely<Database>
  kind: 'postgres' | 'pglite'
  close: () => Promise<void>
}

/** Opens the coordinator's database (Postgres or embedded PGlite) and migrates it to the latest schema. */
export async function openDatabase (options: OpenDatabaseOptions): Promise<OpenedDatabase> {
  let db: Kysely<Database>
  let kind: OpenedDatabase['kind']
  if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10 })
    // An idle client the server terminates emits an error on the pool; unheard, it would end the
    // process. The pool has already dropped that client; the next query opens a new one.
    pool.on('error', (err) => { (options.onIdleError ?? ((e: Error) => { process.stderr.write(`database: idle connection lost (${e.message})\n`) }))(err) })
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
    kind = 'postgres'
  } else {
    let location = options.dataDir
    if (!location.startsWith('memory://')) {
      location = join(options.dataDir, 'pglite')
      await mkdir(location, { recursive: true })
    }
    const pglite = await PGlite.create(location, { parsers: { [INT8_OID]: (v: string) => Number(v) } })
    db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) })
    kind = 'pglite'
  }
  try {
    await migrateToLatest(db)
  } catch (err) {
    await db.destroy()
    throw err
  }
  return { db, kind, close: async () => { await db.destroy() } }
}

import {
  CompiledQuery, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler
} from 'kysely'
import type {
  DatabaseConnection, DatabaseIntrospector, Dialect, DialectAdapter, Driver, Kysely, QueryCompiler, QueryResult
} from 'kysely'
import type { PGlite } from '@electric-sql/pglite'

/**
 * PGlite is one embedded connection, so the driver hands it out to one holder at a time;
 * that keeps a transaction's statements from interleaving with another caller's.
 */
class PGliteDriver implements Driver {
  readonly #db: PGlite
  #queue: Promise<void> = Promise.resolve()
  #release: (() => void) | undefined
  readonly #connection: DatabaseConnection

  constructor (db: PGlite) {
    this.#db = db
    this.#connection = {
      executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
        const result = await this.#db.query<R>(query.sql, [...query.parameters])
        const command = query.sql.trimStart().slice(0, 6).toLowerCase()
        const mutates = command === 'insert' || command === 'update' || command === 'delete'
        return {
          rows: result.rows,
          ...(mutates ? { numAffectedRows: BigInt(result.affectedRows ?? 0) } : {})
        }
      },
      streamQuery: () => { throw new Error('streaming queries are not supported on PGlite') }
    }
  }

  async init (): Promise<void> {}

  async acquireConnection (): Promise<DatabaseConnection> {
    const previous = this.#queue
    let release!: () => void
    this.#queue = new Promise((resolve) => { release = resolve })
    await previous
    this.#release = release
    return this.#connection
  }

  async beginTransaction (connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'))
  }

  async commitTransaction (connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'))
  }

  async rollbackTransaction (connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'))
  }

  async releaseConnection (): Promise<void> {
    const release = this.#release
    this.#release = undefined
    release?.()
  }

  async destroy (): Promise<void> {
    await this.#queue
    await this.#db.close()
  }
}

/** A kysely dialect over an embedded PGlite database. */
export class PGliteDialect implements Dialect {
  readonly #db: PGlite
  constructor (db: PGlite) { this.#db = db }
  createAdapter (): DialectAdapter { return new PostgresAdapter() }
  createDriver (): Driver { return new PGliteDriver(this.#db) }
  createQueryCompiler (): QueryCompiler { return new PostgresQueryCompiler() }
  createIntrospector (db: Kysely<any>): DatabaseIntrospector { return new PostgresIntrospector(db) }
}

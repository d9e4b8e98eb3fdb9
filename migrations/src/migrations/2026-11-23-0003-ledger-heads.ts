import type { Kysely } from 'kysely'
import { sql } from 'kysely'

/**
 * Signed ledger heads: at each round close the coordinator signs "this run's chain up to row
 * seq ends in hash" with its libp2p key, so anyone who kept one detects a rewritten history.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('ledger_heads')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('round', 'integer', (c) => c.notNull())
    .addColumn('seq', 'bigint', (c) => c.notNull())
    .addColumn('rows', 'integer', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('signed_at', 'text', (c) => c.notNull())
    .addColumn('coordinator', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('ledger_heads_run_round', ['run_id', 'round'])
    .execute()
}

/** Drops the table. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('ledger_heads').execute()
}

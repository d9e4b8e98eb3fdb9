import type { Kysely } from 'kysely'
import { sql } from 'kysely'

/**
 * Report scores on the ledger (the loss a report removed on held-out data, measured by the
 * coordinator; null where not scored) and node quarantine: when set, the node's reports are
 * scored but neither folded nor credited until someone who may review it releases it. A
 * release starts the node's record afresh: flags before `reviewed_at` no longer count.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').addColumn('score', 'double precision').execute()
  await db.schema.alterTable('nodes')
    .addColumn('quarantined_at', 'timestamptz')
    .addColumn('quarantine_reason', 'text')
    .addColumn('reviewed_at', 'timestamptz')
    .addColumn('reviewed_by', 'uuid')
    .execute()
  // Reputation reads a node's latest verdicts across runs.
  await sql`create index if not exists ledger_node_seq on ledger (node_id, created_at desc)`.execute(db)
}

/** Drops the columns and the index. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists ledger_node_seq`.execute(db)
  await db.schema.alterTable('nodes').dropColumn('quarantined_at').dropColumn('quarantine_reason').dropColumn('reviewed_at').dropColumn('reviewed_by').execute()
  await db.schema.alterTable('ledger').dropColumn('score').execute()
}

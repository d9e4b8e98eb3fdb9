import type { Kysely } from 'kysely'

/**
 * A node's units still to train (every work request asks) and a report blob's other uses (every
 * round close asks, per blob) were sequential scans of `assignments`, a table that grows by one
 * row per node and round: at 1,000 agents those scans were a large share of a round's overhead.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('assignments_node_status_idx').on('assignments').columns(['node_id', 'status']).execute()
  await db.schema.createIndex('assignments_report_blob_idx').on('assignments').column('report_blob').execute()
}

/** Drops both indexes. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('assignments_report_blob_idx').execute()
  await db.schema.dropIndex('assignments_node_status_idx').execute()
}

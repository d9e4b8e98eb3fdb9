import type { Kysely } from 'kysely'

/**
 * Three things about a node's units:
 * - `assignments.reported_at`: when the coordinator had a report's bytes for the unit. Sizing by
 *   throughput measures a node's turnaround to here, not to the verdict's ledger row, which
 *   comes later for a report held for its twin or its scorers (rounds/unit-sizing.ts).
 * - `assignments.requeued_steps`: the inner steps of an expired or refused unit already handed
 *   out again. A unit larger than the node it goes to next is cut to that node's size, one part
 *   a round, and stays in its run's pool until all of it went out (rounds/requeue.ts).
 * - An index on a node's units by when they were resolved: whether its latest units expired
 *   unreported is asked for every node at every round's opening (rounds/node-backoff.ts).
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assignments')
    .addColumn('reported_at', 'timestamptz')
    .addColumn('requeued_steps', 'integer', (c) => c.notNull().defaultTo(0))
    .execute()
  await db.schema.createIndex('assignments_node_resolved_idx').on('assignments').columns(['node_id', 'resolved_at']).execute()
}

/** Drops the index and both columns. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('assignments_node_resolved_idx').execute()
  await db.schema.alterTable('assignments').dropColumn('requeued_steps').dropColumn('reported_at').execute()
}

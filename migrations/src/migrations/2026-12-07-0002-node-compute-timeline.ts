import type { Kysely } from 'kysely'

/**
 * A node's claimed compute laid end to end (coordinator/src/ledger/compute-time.ts), so units it
 * holds at once cannot each claim the same wall-clock time:
 * - `nodes.credited_until`: where the node's admitted claims end so far; null before its first
 *   report under this rule (its next claim is bounded by its unit's hand-out alone, as before).
 * - `assignments.compute_from` and `compute_claimed_seconds`: where the unit's claim was placed
 *   and how long it was, so a retried report claiming no more is judged as the first attempt
 *   was (a larger claim is placed afresh).
 * Past rows are left as they are: the ledger's compute seconds are what the nodes signed.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('nodes').addColumn('credited_until', 'timestamptz').execute()
  await db.schema.alterTable('assignments').addColumn('compute_from', 'timestamptz').addColumn('compute_claimed_seconds', 'double precision').execute()
}

/** Drops the columns. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assignments').dropColumn('compute_claimed_seconds').dropColumn('compute_from').execute()
  await db.schema.alterTable('nodes').dropColumn('credited_until').execute()
}

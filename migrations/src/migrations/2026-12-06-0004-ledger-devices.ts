import type { Kysely } from 'kysely'

/**
 * How many devices trained an accepted report (`ledger.devices`; null: one), copied from the
 * signed metadata (report v3) so device-hours can be summed in SQL. Not in the row hash: the
 * metadata it comes from is, and verifying a ledger checks the two agree.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').addColumn('devices', 'integer').execute()
}

/** Drops the column. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').dropColumn('devices').execute()
}

import type { Kysely } from 'kysely'

/**
 * How many of a report's signed `devices` the coordinator credits (`ledger.credited_devices`),
 * judged from the throughput the row shows. Hashed with the row (ledger v4). Rows accepted
 * before the check keep null (their hash was made without it) and count the devices they
 * claimed. (This once copied `devices` in, which broke those rows' hashes;
 * 2026-12-06-0006 undoes that where it ran.)
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').addColumn('credited_devices', 'integer').execute()
}

/** Drops the column. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').dropColumn('credited_devices').execute()
}

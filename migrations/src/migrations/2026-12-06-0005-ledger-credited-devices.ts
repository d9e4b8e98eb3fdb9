import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * How many of a report's signed `devices` the coordinator credits (`ledger.credited_devices`),
 * judged from the throughput the row shows. Hashed with the row (ledger v4). Rows accepted
 * before the check keep the count they claimed.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').addColumn('credited_devices', 'integer').execute()
  await sql`update ledger set credited_devices = devices where devices is not null and outcome = 'accepted'`.execute(db)
}

/** Drops the column. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').dropColumn('credited_devices').execute()
}

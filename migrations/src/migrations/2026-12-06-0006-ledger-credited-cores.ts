import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * The CPU cores the coordinator credits a row counted as CPU time (`ledger.credited_cores`; 0
 * for GPU time), judged from its throughput when the row is written and hashed with it (ledger
 * v5). Rows from before keep being judged by the node's current profile.
 *
 * Also undoes 2026-12-06-0005's backfill where it ran: copying `devices` into
 * `credited_devices` on rows hashed before that column existed made them hash as v4 and fail
 * verification. Those rows get null again; readers count a row with a device count and no
 * credit at its signed count, as the backfill meant to.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').addColumn('credited_cores', 'integer').execute()
  await sql`update ledger set credited_devices = null
    where credited_devices is not null
      and created_at < (select timestamp::timestamptz from barnraise_migrations where name = '2026-12-06-0005-ledger-credited-devices')`.execute(db)
}

/** Drops the column (the undone backfill stays undone). */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').dropColumn('credited_cores').execute()
}

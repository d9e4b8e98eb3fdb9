import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * Overlapped rounds: a run may hold two open rounds (the one collecting reports and the next,
 * already training from the base one outer step old), so "one open round per run" becomes "one
 * open round per run and number". `applied_to` records the checkpoint a round's outer step
 * started from, which in an overlapped run is not the base its units trained from.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists rounds_one_open_per_run`.execute(db)
  await sql`create unique index rounds_open_number_per_run on rounds (run_id, number) where status = 'open'`.execute(db)
  await db.schema.alterTable('rounds').addColumn('applied_to', 'text').execute()
}

/** Back to one open round per run (fails while a run holds two; close one first). */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('rounds').dropColumn('applied_to').execute()
  await sql`drop index if exists rounds_open_number_per_run`.execute(db)
  await sql`create unique index rounds_one_open_per_run on rounds (run_id) where status = 'open'`.execute(db)
}

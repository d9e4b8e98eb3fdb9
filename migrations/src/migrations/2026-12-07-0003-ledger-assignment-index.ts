import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * An index on a ledger row's unit: report intake asks, for each refusal about a unit already
 * settled, whether that unit already has a row with the same code (it keeps the first only;
 * rounds/report-intake.ts). Only `accepted` rows had one (the one-accept-per-unit index).
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`create index if not exists ledger_assignment_idx on ledger (assignment_id) where assignment_id is not null`.execute(db)
}

/** Drops the index. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists ledger_assignment_idx`.execute(db)
}

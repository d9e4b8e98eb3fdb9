import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * CPU core-hour pledges (CPU-only machines' time is not GPU time, so it gets its own unit) and
 * each run's unigram baseline loss, computed once from its data and kept with the run.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`alter table pledges drop constraint if exists pledges_kind_check`.execute(db)
  await sql`alter table pledges add constraint pledges_kind_check check (kind in ('usd', 'gpu_hours', 'cpu_core_hours'))`.execute(db)
  // Statements read a run's pledges and its accepted ledger rows per organization.
  await db.schema.createIndex('ledger_run_organization_idx').on('ledger').columns(['run_id', 'organization_id']).execute()
  await db.schema.alterTable('runs').addColumn('unigram_baseline', 'double precision').execute()
}

/** Back to money and GPU-hour pledges only; CPU core-hour pledges cannot be kept under that rule. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs').dropColumn('unigram_baseline').execute()
  await db.schema.dropIndex('ledger_run_organization_idx').ifExists().execute()
  await sql`delete from pledges where kind = 'cpu_core_hours'`.execute(db)
  await sql`alter table pledges drop constraint if exists pledges_kind_check`.execute(db)
  await sql`alter table pledges add constraint pledges_kind_check check (kind in ('usd', 'gpu_hours'))`.execute(db)
}

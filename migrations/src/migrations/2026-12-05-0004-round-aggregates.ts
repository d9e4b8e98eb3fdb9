import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * A round's mean update as the coordinator encoded and applied it (int8), for nodes that rebuild
 * the next base from it instead of from every report: `rounds.update_blob` and the blob kind.
 * And a unit's own inner steps (`assignments.inner_steps`) for runs that size units by throughput.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('rounds').addColumn('update_blob', 'text').execute()
  // A unit's own inner steps when the run sizes units by throughput (null: the run's).
  await db.schema.alterTable('assignments').addColumn('inner_steps', 'integer').execute()
  await sql`alter table blobs drop constraint if exists blobs_kind_check`.execute(db)
  await sql`alter table blobs add constraint blobs_kind_check check (kind in ('checkpoint', 'shard', 'report', 'optimizer', 'tokenizer', 'documents', 'update'))`.execute(db)
}

/** Drops the column and the kind (and any such blobs' rows). */
export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`delete from blobs where kind = 'update'`.execute(db)
  await sql`alter table blobs drop constraint if exists blobs_kind_check`.execute(db)
  await sql`alter table blobs add constraint blobs_kind_check check (kind in ('checkpoint', 'shard', 'report', 'optimizer', 'tokenizer', 'documents'))`.execute(db)
  await db.schema.alterTable('rounds').dropColumn('update_blob').execute()
  await db.schema.alterTable('assignments').dropColumn('inner_steps').execute()
}

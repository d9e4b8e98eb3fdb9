import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * Redundancy sampling: a unit may double another (`twin_of`, same ranges, seed and recipe), and
 * the first of a pair to report is `held`, with its signed header, until the second arrives
 * and the two deltas are compared.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assignments')
    .addColumn('twin_of', 'uuid', (c) => c.references('assignments.id').onDelete('set null'))
    .addColumn('held_report', 'jsonb')
    .execute()
  await sql`alter table assignments drop constraint if exists assignments_status_check`.execute(db)
  await sql`alter table assignments add constraint assignments_status_check check (status in ('assigned', 'held', 'accepted', 'refused', 'expired'))`.execute(db)
}

/** Drops the columns; held units become assigned again (their reports were never counted). */
export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`update assignments set status = 'assigned' where status = 'held'`.execute(db)
  await sql`alter table assignments drop constraint if exists assignments_status_check`.execute(db)
  await sql`alter table assignments add constraint assignments_status_check check (status in ('assigned', 'accepted', 'refused', 'expired'))`.execute(db)
  await db.schema.alterTable('assignments').dropColumn('twin_of').dropColumn('held_report').execute()
}

import type { Kysely } from 'kysely'

/**
 * The count sketch (4096 float32s) of each accepted report of a run that screens reports, kept
 * for the run's latest few hundred, so a restarted coordinator still recognises a replay of a
 * report accepted before it went down, and still knows the direction the last round trained.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assignments').addColumn('sketch', 'bytea').execute()
}

/** Drops the column. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assignments').dropColumn('sketch').execute()
}

import type { Kysely } from 'kysely'

/**
 * A node's report upload rate as the coordinator measured it (`nodes.upload_bytes_per_second`),
 * and the codec each unit was handed out in (`assignments.codec`; null: the run's own), for runs
 * that let a slow link use a smaller codec (docs/codec-choice.md).
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('nodes').addColumn('upload_bytes_per_second', 'double precision').execute()
  await db.schema.alterTable('assignments').addColumn('codec', 'text').execute()
}

/** Drops both columns. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('assignments').dropColumn('codec').execute()
  await db.schema.alterTable('nodes').dropColumn('upload_bytes_per_second').execute()
}

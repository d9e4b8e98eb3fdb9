import type { Kysely } from 'kysely'

/**
 * A run launched on a dataset still uploading or tokenizing: `runs.awaiting_dataset` names it
 * until it is ready (the run's shards are filled in then), and `runs.start_when_ready` records
 * that the organizer asked it to start as soon as it can.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs').addColumn('awaiting_dataset', 'uuid').execute()
  await db.schema.alterTable('runs').addColumn('start_when_ready', 'boolean', (c) => c.notNull().defaultTo(false)).execute()
}

/** Drops both columns. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs').dropColumn('start_when_ready').execute()
  await db.schema.alterTable('runs').dropColumn('awaiting_dataset').execute()
}

import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * Scoring by nodes, for models too large for the coordinator to score: a report held for its
 * scores gets one task per scoring node; each task holds the losses that node measured.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('scoring_tasks')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('round_id', 'uuid', (c) => c.notNull().references('rounds.id').onDelete('cascade'))
    .addColumn('assignment_id', 'uuid', (c) => c.notNull().references('assignments.id').onDelete('cascade'))
    .addColumn('node_id', 'uuid', (c) => c.notNull().references('nodes.id').onDelete('cascade'))
    .addColumn('windows_blob', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('assigned', 'done', 'expired')`))
    .addColumn('base_loss', 'double precision')
    .addColumn('after_loss', 'double precision')
    .addColumn('reversed_loss', 'double precision')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('resolved_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('scoring_tasks_node_open').on('scoring_tasks').columns(['node_id', 'status']).execute()
  await db.schema.createIndex('scoring_tasks_assignment').on('scoring_tasks').column('assignment_id').execute()
}

/** Drops the table. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('scoring_tasks').execute()
}

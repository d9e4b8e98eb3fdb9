import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * Which runs a lab's machines train. `serves = 'all'` keeps today's behaviour (every running run
 * on the install, whose organizers an admin granted); `'chosen'` limits the lab's nodes to the
 * runs and organizers it listed, plus runs its own members own.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('organizations')
    .addColumn('serves', 'text', (c) => c.notNull().defaultTo('all').check(sql`serves in ('all', 'chosen')`)).execute()
  await db.schema.createTable('organization_served_runs')
    .addColumn('organization_id', 'uuid', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('organization_served_runs_pk', ['organization_id', 'run_id']).execute()
  await db.schema.createTable('organization_served_organizers')
    .addColumn('organization_id', 'uuid', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('organization_served_organizers_pk', ['organization_id', 'user_id']).execute()
}

/** Every lab serves every run again. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('organization_served_organizers').execute()
  await db.schema.dropTable('organization_served_runs').execute()
  await db.schema.alterTable('organizations').dropColumn('serves').execute()
}

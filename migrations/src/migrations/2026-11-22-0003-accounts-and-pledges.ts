import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/** Sign-in sessions and funders' pledges. */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('sessions')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('sessions_user_idx').on('sessions').column('user_id').execute()

  await db.schema.createTable('pledges')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('user_id', 'uuid', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('organization_id', 'uuid', (c) => c.references('organizations.id').onDelete('set null'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('usd', 'gpu_hours')`))
    .addColumn('amount', 'double precision', (c) => c.notNull().check(sql`amount > 0`))
    .addColumn('note', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('pledges_run_idx').on('pledges').column('run_id').execute()
}

/** Drops sessions and pledges. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('pledges').ifExists().execute()
  await db.schema.dropTable('sessions').ifExists().execute()
}

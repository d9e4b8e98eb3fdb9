import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * Invitations: the only way into an existing organization, and (unless the install opens
 * organizing to everyone) the way an organizer account is made. Codes are stored hashed.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('invitations')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('code_hash', 'text', (c) => c.notNull().unique())
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('organizer', 'lab_admin', 'funder')`))
    .addColumn('organization_id', 'uuid', (c) => c.references('organizations.id').onDelete('cascade'))
    .addColumn('created_by', 'uuid', (c) => c.references('users.id').onDelete('set null'))
    .addColumn('max_uses', 'integer', (c) => c.notNull().defaultTo(1).check(sql`max_uses between 1 and 1000`))
    .addColumn('used_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
}

/** Drops invitations; accounts made with them keep their roles. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('invitations').execute()
}

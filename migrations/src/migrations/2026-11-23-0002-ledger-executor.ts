import type { Kysely } from 'kysely'

/**
 * Which executor trained each report (typescript, torch-cpu, torch-cuda), as the node signed
 * it. Nullable: rows written before reports carried it have none, and still verify.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').addColumn('executor', 'text').execute()
}

/** Drops the column. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('ledger').dropColumn('executor').execute()
}

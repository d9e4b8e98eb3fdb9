import type { Kysely } from 'kysely'

/**
 * Checkpoint retention: a pruned checkpoint keeps its row (round, tokens, loss stay on the
 * curve and in the ledger's story) while its weights are deleted from the blob store.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('checkpoints').addColumn('pruned_at', 'timestamptz').execute()
}

/** Drops the pruned marker. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('checkpoints').dropColumn('pruned_at').execute()
}

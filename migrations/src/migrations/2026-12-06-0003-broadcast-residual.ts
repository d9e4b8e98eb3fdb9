import type { Kysely } from 'kysely'

/**
 * What a run's sparse broadcasts have left out so far (`runs.broadcast_residual`, the sha256 of
 * an `optimizer` blob; null: none yet, or a dense broadcast), carried into the next round's
 * broadcast by the coordinator (coordinator/src/rounds/sparse-broadcast.ts).
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs').addColumn('broadcast_residual', 'text').execute()
}

/** Drops the column. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs').dropColumn('broadcast_residual').execute()
}

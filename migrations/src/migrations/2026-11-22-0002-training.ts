import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/** Blobs, rounds, assignments, checkpoints and the ledger: what federated training persists. */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs')
    .addColumn('current_round', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('tokens_seen', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('latest_checkpoint', 'text')
    .addColumn('outer_state', 'text')
    .addColumn('data_cursor', 'jsonb', (c) => c.notNull().defaultTo(sql`'{"epoch":0,"shard":0,"offset":0}'::jsonb`))
    .execute()

  await db.schema.createTable('blobs')
    .addColumn('sha256', 'text', (c) => c.primaryKey())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('checkpoint', 'shard', 'report', 'optimizer')`))
    .addColumn('meta', 'jsonb', (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema.createTable('rounds')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('number', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open', 'closed', 'abandoned')`))
    .addColumn('base_checkpoint', 'text', (c) => c.notNull())
    .addColumn('opened_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('deadline_at', 'timestamptz', (c) => c.notNull())
    .addColumn('closed_at', 'timestamptz')
    .addColumn('close_reason', 'text')
    .addColumn('result_checkpoint', 'text')
    .addColumn('tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('train_loss', 'double precision')
    .addColumn('val_loss', 'double precision')
    .execute()
  // At most one open round per run, enforced by the database, not by care.
  await sql`create unique index rounds_one_open_per_run on rounds (run_id) where status = 'open'`.execute(db)
  await db.schema.createIndex('rounds_run_number_idx').on('rounds').columns(['run_id', 'number']).execute()

  await db.schema.createTable('assignments')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('round_id', 'uuid', (c) => c.notNull().references('rounds.id').onDelete('cascade'))
    .addColumn('node_id', 'uuid', (c) => c.notNull().references('nodes.id').onDelete('cascade'))
    .addColumn('ranges', 'jsonb', (c) => c.notNull())
    .addColumn('tokens', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('assigned', 'accepted', 'refused', 'expired')`))
    .addColumn('requeued', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('report_blob', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('resolved_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('assignments_round_idx').on('assignments').column('round_id').execute()

  await db.schema.createTable('checkpoints')
    .addColumn('sha256', 'text', (c) => c.primaryKey())
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('round', 'integer', (c) => c.notNull())
    .addColumn('tokens_seen', 'bigint', (c) => c.notNull())
    .addColumn('val_loss', 'double precision')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema.createTable('ledger')
    .addColumn('seq', 'bigserial', (c) => c.primaryKey())
    .addColumn('run_id', 'uuid', (c) => c.notNull().references('runs.id').onDelete('cascade'))
    .addColumn('round', 'integer', (c) => c.notNull())
    .addColumn('node_id', 'uuid')
    .addColumn('peer_id', 'text', (c) => c.notNull())
    .addColumn('organization_id', 'uuid')
    .addColumn('assignment_id', 'uuid')
    .addColumn('tokens', 'bigint', (c) => c.notNull())
    .addColumn('compute_seconds', 'double precision', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('accepted', 'refused')`))
    .addColumn('reason', 'text')
    .addColumn('metadata', 'text')
    .addColumn('signature', 'text')
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('ledger_run_idx').on('ledger').columns(['run_id', 'seq']).execute()
  // One accepted contribution per work unit, whatever a retry or a restart does.
  await sql`create unique index ledger_one_accept_per_assignment on ledger (assignment_id) where outcome = 'accepted'`.execute(db)
}

/** Drops the training tables and columns. */
export async function down (db: Kysely<unknown>): Promise<void> {
  for (const table of ['ledger', 'checkpoints', 'assignments', 'rounds', 'blobs']) {
    await db.schema.dropTable(table).ifExists().execute()
  }
  await db.schema.alterTable('runs')
    .dropColumn('current_round').dropColumn('tokens_seen').dropColumn('latest_checkpoint')
    .dropColumn('outer_state').dropColumn('data_cursor')
    .execute()
}

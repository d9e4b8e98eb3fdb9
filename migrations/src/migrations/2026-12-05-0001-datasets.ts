import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * Datasets uploaded in pieces and tokenized off the request path: one row per dataset, from
 * its first byte to its shards. Tokenizers and document indexes become blobs too.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('datasets')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_by', 'uuid', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('uploading', 'tokenizing', 'ready', 'failed')`))
    .addColumn('format', 'text', (c) => c.notNull().check(sql`format in ('text', 'jsonl', 'parquet')`))
    .addColumn('field', 'text')
    .addColumn('tokenizer', 'text', (c) => c.notNull())
    .addColumn('file_name', 'text', (c) => c.notNull())
    .addColumn('file_bytes', 'bigint', (c) => c.notNull())
    .addColumn('received_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('read_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('documents', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('bad_rows', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('bad_row_examples', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('train_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('validation_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('train_shards', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('validation_shard', 'text')
    .addColumn('document_index', 'text')
    .addColumn('error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('datasets_created_by').on('datasets').column('created_by').execute()
  await sql`alter table blobs drop constraint if exists blobs_kind_check`.execute(db)
  await sql`alter table blobs add constraint blobs_kind_check check (kind in ('checkpoint', 'shard', 'report', 'optimizer', 'tokenizer', 'documents'))`.execute(db)
}

/** Drops the table and the new blob kinds. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('datasets').execute()
  await sql`delete from blobs where kind in ('tokenizer', 'documents')`.execute(db)
  await sql`alter table blobs drop constraint if exists blobs_kind_check`.execute(db)
  await sql`alter table blobs add constraint blobs_kind_check check (kind in ('checkpoint', 'shard', 'report', 'optimizer'))`.execute(db)
}

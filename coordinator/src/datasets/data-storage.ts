import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'

/**
 * Bytes the install keeps for uploaded data: shards made from uploads, uploaded tokenizers and
 * document indexes (the built-in demo corpus does not count). `--dataset-quota-mb` bounds it.
 */
export async function uploadedDataBytes (db: Kysely<Database>): Promise<number> {
  const { total } = await db.selectFrom('blobs').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), eb.lit(0)).as('total'))
    .where('kind', 'in', ['shard', 'tokenizer', 'documents']).where(sql<string | null>`meta->>'uploadedBy'`, 'is not', null).executeTakeFirstOrThrow()
  return Number(total)
}

/** Bytes announced by uploads still uploading or tokenizing: promised room, counted as used. */
export async function stagedUploadBytes (db: Kysely<Database>): Promise<number> {
  const { staged } = await db.selectFrom('datasets').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('file_bytes'), eb.lit(0)).as('staged'))
    .where('status', 'in', ['uploading', 'tokenizing']).executeTakeFirstOrThrow()
  return Number(staged)
}

const quotaQueues = new WeakMap<Kysely<Database>, Promise<unknown>>()

/**
 * Runs `fn`, a dataset-quota check and the writes it allows, after every earlier one on this
 * database has finished, so two requests cannot each see the same free room and both take it.
 * In-process: one coordinator serves a data directory at a time (`serve` holds its lock).
 */
export async function withDataQuota<T> (db: Kysely<Database>, fn: () => Promise<T>): Promise<T> {
  const turn = (quotaQueues.get(db) ?? Promise.resolve()).then(fn, fn)
  quotaQueues.set(db, turn.catch(() => undefined))
  return await turn
}

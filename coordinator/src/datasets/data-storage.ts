import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'

/**
 * Bytes the install keeps for uploaded data: shards made from uploads, uploaded tokenizers and
 * document indexes (the built-in demo corpus does not count), and room reserved for a large
 * dataset's shards while they are being stored (`reserveDataRoom`). `--dataset-quota-mb` bounds it.
 */
export async function uploadedDataBytes (db: Kysely<Database>): Promise<number> {
  const { total } = await db.selectFrom('blobs').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), eb.lit(0)).as('total'))
    .where('kind', 'in', ['shard', 'tokenizer', 'documents']).where(sql<string | null>`meta->>'uploadedBy'`, 'is not', null).executeTakeFirstOrThrow()
  return Number(total) + (reservations.get(db) ?? 0)
}

const reservations = new WeakMap<Kysely<Database>, number>()

/**
 * Counts `bytes` as stored until the returned release is called: taken inside `withDataQuota`
 * once the check passed, so the writes (minutes for a large dataset) can happen outside it
 * without other requests taking the same room. Counted twice between a write and the release:
 * briefly too strict, never too lenient.
 */
export function reserveDataRoom (db: Kysely<Database>, bytes: number): () => void {
  reservations.set(db, (reservations.get(db) ?? 0) + bytes)
  let held = true
  return () => {
    if (!held) return
    held = false
    reservations.set(db, (reservations.get(db) ?? 0) - bytes)
  }
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

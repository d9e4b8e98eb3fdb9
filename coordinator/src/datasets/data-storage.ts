import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database, DatasetStatus } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'

/**
 * The room uploaded data may take: the install's (`--dataset-quota-mb`) and one account's
 * (`--user-dataset-quota-mb`; absent, an account may take all of the install's). `InstallLimits`
 * is one.
 */
export interface DataQuota { datasetQuotaBytes: number, userDatasetQuotaBytes?: number }

/**
 * An upload holds room for its whole announced file only while it is moving: a piece within
 * this long (a client retrying a dropped piece comes back within minutes, a laptop put to sleep
 * does not), and on average at least `UPLOAD_PACE_BYTES_PER_S` since it was announced, after a
 * first stretch of `UPLOAD_FIRST_STRETCH_MS`. Otherwise it holds only the bytes it has received (they are on disk)
 * for others (its own uploader's checks count it whole: `heldBytes`). Its next piece takes the
 * rest again if the room is still there, when the pause was all that stalled it; a slow one
 * carries on without holding the rest, each piece needing room of its own. Without the pace, a
 * byte sent every 59 minutes would hold a file as large as the quota for ever.
 */
export const UPLOAD_HOLD_MS = 3600_000
/**
 * How long an announcement holds its whole file before the pace counts: time for the first
 * pieces to move (an 8 MiB piece takes two minutes at the pace). It is short because it is free:
 * an account that announces a file as large as the quota and sends nothing holds the quota this
 * long, and with an hour several accounts (open organizing lets anyone sign up) could take turns
 * keeping everyone else's uploads refused.
 */
export const UPLOAD_FIRST_STRETCH_MS = 10 * 60_000
/** 64 KiB/s (about 0.5 Mbit/s, below any uplink in use): 4 GiB take 18 hours at this pace. */
export const UPLOAD_PACE_BYTES_PER_S = 64 * 1024

/** The columns of a dataset row that say how much room its upload holds. */
export interface UploadHold { status: DatasetStatus, file_bytes: number, received_bytes: number, created_at: Date, updated_at: Date }

/** Whether an upload holds room for its whole file at `now` (ms), or only for the bytes it has received (see `UPLOAD_HOLD_MS`). */
export function holdsWholeFile (row: UploadHold, now: number): boolean {
  if (row.status === 'tokenizing') return true
  if (row.status !== 'uploading') return false
  if (now - row.updated_at.getTime() > UPLOAD_HOLD_MS) return false
  // Each byte received buys time at the pace; a new upload starts with the first stretch.
  return now <= row.created_at.getTime() + UPLOAD_FIRST_STRETCH_MS + row.received_bytes / UPLOAD_PACE_BYTES_PER_S * 1000
}

/** An upload that receives nothing for this long is abandoned (failed, its staged bytes deleted). */
export const UPLOAD_ABANDONED_AFTER_HOURS = 24

/**
 * Bytes an upload in progress counts against the quota at `now` (ms); in a check for `forUser`,
 * that account's own uploads count whole, stalled or not: a stall frees room for others, not for
 * its own uploader, who could otherwise announce the whole quota again each hour and send nothing.
 */
export function heldBytes (row: UploadHold & { created_by?: string }, now: number, forUser?: string): number {
  if (forUser !== undefined && row.created_by === forUser && (row.status === 'uploading' || row.status === 'tokenizing')) return row.file_bytes
  return holdsWholeFile(row, now) ? row.file_bytes : row.received_bytes
}

/**
 * Bytes the install keeps for uploaded data: shards made from uploads, uploaded tokenizers and
 * document indexes (the built-in demo corpus does not count), and room reserved for a large
 * dataset's shards while they are being stored (`reserveDataRoom`); only `userId`'s when given
 * (a blob counts for whoever stored it first). `--dataset-quota-mb` bounds it.
 */
export async function uploadedDataBytes (db: Kysely<Database>, userId?: string): Promise<number> {
  let query = db.selectFrom('blobs').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('size'), eb.lit(0)).as('total'))
    .where('kind', 'in', ['shard', 'tokenizer', 'documents']).where(sql<string | null>`meta->>'uploadedBy'`, 'is not', null)
  if (userId !== undefined) query = query.where(sql<string | null>`meta->>'uploadedBy'`, '=', userId)
  const { total } = await query.executeTakeFirstOrThrow()
  const held = reservations.get(db)
  return Number(total) + (userId === undefined ? held?.total ?? 0 : held?.byUser.get(userId) ?? 0)
}

const reservations = new WeakMap<Kysely<Database>, { total: number, byUser: Map<string, number> }>()

/**
 * Counts `bytes` as stored (for `userId` too, when given) until the returned release is called:
 * taken inside `withDataQuota` once the check passed, so the writes (minutes for a large
 * dataset) can happen outside it without other requests taking the same room. Counted twice
 * between a write and the release: briefly too strict, never too lenient.
 */
export function reserveDataRoom (db: Kysely<Database>, bytes: number, userId?: string): () => void {
  const held = reservations.get(db) ?? { total: 0, byUser: new Map<string, number>() }
  reservations.set(db, held)
  const add = (n: number): void => {
    held.total += n
    if (userId === undefined) return
    const mine = (held.byUser.get(userId) ?? 0) + n
    if (mine === 0) held.byUser.delete(userId)
    else held.byUser.set(userId, mine)
  }
  add(bytes)
  let holding = true
  return () => {
    if (!holding) return
    holding = false
    add(-bytes)
  }
}

/** Which uploads `stagedUploadBytes` counts, and how. */
export interface StagedOptions {
  /** only this account's uploads */
  userId?: string
  /** leaves this dataset out (one whose room its shards take over) */
  except?: string
  /** counts this account's uploads whole, stalled or not (`heldBytes`' `forUser`), all but `asking` */
  fullFor?: string
  /** the upload whose piece is being checked: counted as it stands, its uploader resuming it */
  asking?: string
  now?: number
}

/**
 * Bytes held for uploads still uploading or tokenizing, counted as used: a moving upload's
 * whole file, a stalled one's received bytes (`holdsWholeFile`), and `fullFor`'s whole files.
 */
export async function stagedUploadBytes (db: Kysely<Database>, options: StagedOptions = {}): Promise<number> {
  // `heldBytes` in SQL, so a check costs one row however many uploads there are. Ids compare as
  // text: a caller's account id need not be a uuid (a test's, a manifest's owner).
  const now = options.now ?? Date.now()
  const cutoff = new Date(now - UPLOAD_HOLD_MS)
  const paceCutoff = new Date(now - UPLOAD_FIRST_STRETCH_MS)
  const own = options.fullFor === undefined
    ? sql<boolean>`false`
    : options.asking === undefined
      ? sql<boolean>`created_by::text = ${options.fullFor}`
      : sql<boolean>`(created_by::text = ${options.fullFor} and id::text <> ${options.asking})`
  let query = db.selectFrom('datasets')
    .select(sql<string>`coalesce(sum(case when status = 'tokenizing' or ${own} or (updated_at >= ${cutoff} and created_at + (received_bytes::float8 / ${UPLOAD_PACE_BYTES_PER_S}::float8) * interval '1 second' >= ${paceCutoff}) then file_bytes else received_bytes end), 0)`.as('held'))
    .where('status', 'in', ['uploading', 'tokenizing'])
  if (options.userId !== undefined) query = query.where(sql<string>`created_by::text`, '=', options.userId)
  if (options.except !== undefined) query = query.where(sql<string>`id::text`, '<>', options.except)
  const { held } = await query.executeTakeFirstOrThrow()
  return Number(held)
}

const MIB = 1024 * 1024

/** A size for a message: MiB with one decimal, KiB for less than one MiB (a test's small quota). */
export function dataAmount (bytes: number): string {
  return bytes === 0 || Math.abs(bytes) >= MIB ? `${(bytes / MIB).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`
}

/** A quota as the operator gave it: whole MiB when it is. */
function quotaAmount (bytes: number): string {
  return bytes % MIB === 0 ? `${bytes / MIB} MiB` : dataAmount(bytes)
}

/**
 * What needs room: whose it is, how much, what it is (`the file is 3.0 MiB`), and what the
 * refused person can do; `except` leaves a dataset out (its shards take over its room), `asking`
 * is the upload whose piece needs it (counted as it stands, not whole for its own uploader).
 */
export interface RoomNeeded { userId: string, bytes: number, what: string, except?: string, asking?: string, advice?: string }

/**
 * Refuses (`ERR_QUOTA_EXCEEDED`, naming the flag and the figures) when `need.bytes` more for
 * `need.userId` would go past that account's share or the install's dataset quota, counting
 * stored data and the room uploads in progress hold, the account's own at their whole file
 * (`heldBytes`). Run it inside `withDataQuota`, with the writes it allows. Nothing new to store
 * (0 bytes) always fits.
 */
export async function assertDataRoom (db: Kysely<Database>, quota: DataQuota, need: RoomNeeded): Promise<void> {
  if (need.bytes <= 0) return
  const now = Date.now()
  const advice = need.advice ?? 'ask the operator for room'
  const which: StagedOptions = { now, ...(need.except !== undefined ? { except: need.except } : {}), ...(need.asking !== undefined ? { asking: need.asking } : {}) }
  // Said only when refused: how much of the held room is the asker's own stalled uploads, which
  // hold less for others and would free it for the asker too by moving on or being abandoned.
  const ownStalled = async (staged: number, userId?: string): Promise<string> => {
    const extra = staged - await stagedUploadBytes(db, { ...which, ...(userId !== undefined ? { userId } : {}) })
    return extra <= 0 ? '' : `; your stalled uploads count whole for you, ${dataAmount(extra)} more than for others, until you resume them or they are abandoned ${UPLOAD_ABANDONED_AFTER_HOURS} hours after their last piece`
  }
  const cap = quota.userDatasetQuotaBytes
  if (cap !== undefined && Number.isFinite(cap)) {
    const stored = await uploadedDataBytes(db, need.userId)
    const staged = await stagedUploadBytes(db, { ...which, userId: need.userId, fullFor: need.userId })
    const room = cap - stored - staged
    if (need.bytes > room) {
      throw new CoordinatorError('ERR_QUOTA_EXCEEDED', `${need.what}, and your share of the dataset quota (${quotaAmount(cap)} an account, --user-dataset-quota-mb) has ${dataAmount(Math.max(0, room))} left after your stored data (${dataAmount(stored)}) and your uploads in progress (${dataAmount(staged)}${await ownStalled(staged, need.userId)}); ${advice}`)
    }
  }
  const stored = await uploadedDataBytes(db)
  const staged = await stagedUploadBytes(db, { ...which, fullFor: need.userId })
  const room = quota.datasetQuotaBytes - stored - staged
  if (need.bytes > room) {
    throw new CoordinatorError('ERR_QUOTA_EXCEEDED', `${need.what}, and the coordinator's dataset quota (${quotaAmount(quota.datasetQuotaBytes)}, --dataset-quota-mb) has ${dataAmount(Math.max(0, room))} left after stored data (${dataAmount(stored)}) and uploads in progress (${dataAmount(staged)}${await ownStalled(staged)}); ${advice}`)
  }
}

/** The room an account has for new data, and what bounds it, in words for a message. */
export interface DataRoom { bytes: number, limit: string }

/**
 * The bytes `who.userId` may still store, by the same count `assertDataRoom` checks (stored data,
 * reserved room and uploads in progress, the account's own whole, `except` left out): the
 * smaller of the account's share and the install's quota, and which it is, naming its flag and
 * figures. Infinite when neither bounds it. Read it inside `withDataQuota`.
 */
export async function dataRoom (db: Kysely<Database>, quota: DataQuota, who: { userId: string, except?: string }): Promise<DataRoom> {
  const which: StagedOptions = { now: Date.now(), ...(who.except !== undefined ? { except: who.except } : {}) }
  let found: DataRoom = { bytes: Infinity, limit: 'no dataset quota bounds it' }
  const cap = quota.userDatasetQuotaBytes
  if (cap !== undefined && Number.isFinite(cap)) {
    const stored = await uploadedDataBytes(db, who.userId)
    const staged = await stagedUploadBytes(db, { ...which, userId: who.userId, fullFor: who.userId })
    const bytes = Math.max(0, cap - stored - staged)
    found = { bytes, limit: `your share of the dataset quota (${quotaAmount(cap)} an account, --user-dataset-quota-mb) had ${dataAmount(bytes)} left after your stored data (${dataAmount(stored)}) and your other uploads in progress (${dataAmount(staged)})` }
  }
  if (Number.isFinite(quota.datasetQuotaBytes)) {
    const stored = await uploadedDataBytes(db)
    const staged = await stagedUploadBytes(db, { ...which, fullFor: who.userId })
    const bytes = Math.max(0, quota.datasetQuotaBytes - stored - staged)
    if (bytes < found.bytes) found = { bytes, limit: `the coordinator's dataset quota (${quotaAmount(quota.datasetQuotaBytes)}, --dataset-quota-mb) had ${dataAmount(bytes)} left after stored data (${dataAmount(stored)}) and other uploads in progress (${dataAmount(staged)})` }
  }
  return found
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

import { sql } from 'kysely'
import type { Kysely, Selectable, Transaction } from 'kysely'
import { csvField, ledgerEntryHash, ledgerGenesisHash } from '@barnraise/protocol'
import type { LedgerEntry, LedgerEntryFields } from '@barnraise/protocol'
import type { Database, LedgerTable } from '../db/schema.ts'

export type NewLedgerEntry = Omit<LedgerEntryFields, 'prevHash' | 'executor' | 'createdAt'> & { executor: string | null, devices?: number | null, creditedDevices?: number | null, creditedCores?: number | null }

/**
 * Appends a row to a run's hash chain inside the caller's transaction. The run row is locked
 * first so two reports landing at once cannot both chain onto the same previous row.
 */
export async function appendLedgerEntry (trx: Transaction<Database>, entry: NewLedgerEntry): Promise<LedgerEntry> {
  await sql`select id from runs where id = ${entry.runId} for update`.execute(trx)
  // The row's time is hashed (ledger v6), so it is picked here, not left to the column's default
  // after the hash. The database's clock, read after the lock: pledges' and reviews' times come
  // from it too, and a row compared with them must not carry another host's clock skew. Whole
  // milliseconds, so the Date read back and the ISO string hashed name the same instant.
  const picked = (await sql<{ hash: string | null, now: Date }>`select
    (select hash from ledger where run_id = ${entry.runId} order by seq desc limit 1) as hash,
    date_trunc('milliseconds', clock_timestamp()) as now`.execute(trx)).rows[0]!
  const prevHash = picked.hash ?? await ledgerGenesisHash(entry.runId)
  const createdAt = picked.now
  const fields: LedgerEntryFields = { ...entry, prevHash, createdAt: createdAt.toISOString() }
  const hash = await ledgerEntryHash(fields)
  const row = await trx.insertInto('ledger').values({
    run_id: fields.runId,
    round: fields.round,
    node_id: fields.nodeId,
    peer_id: fields.peerId,
    organization_id: fields.organizationId,
    assignment_id: fields.assignmentId,
    tokens: fields.tokens,
    compute_seconds: fields.computeSeconds,
    outcome: fields.outcome,
    reason: fields.reason,
    metadata: fields.metadata,
    signature: fields.signature,
    prev_hash: prevHash,
    hash,
    executor: fields.executor,
    devices: fields.devices ?? null,
    credited_devices: fields.creditedDevices ?? null,
    credited_cores: fields.creditedCores ?? null,
    score: fields.score ?? null,
    created_at: createdAt
  }).returning('seq').executeTakeFirstOrThrow()
  return { ...fields, seq: row.seq, hash }
}

type LedgerRow = Selectable<LedgerTable>

/** A stored row as exported, hashed and verified. */
function entryOf (r: LedgerRow): LedgerEntry {
  return {
    seq: r.seq,
    runId: r.run_id,
    round: r.round,
    nodeId: r.node_id,
    peerId: r.peer_id,
    organizationId: r.organization_id,
    assignmentId: r.assignment_id,
    tokens: r.tokens,
    computeSeconds: r.compute_seconds,
    outcome: r.outcome,
    reason: r.reason,
    metadata: r.metadata,
    signature: r.signature,
    prevHash: r.prev_hash,
    hash: r.hash,
    createdAt: r.created_at.toISOString(),
    executor: r.executor,
    devices: r.devices,
    creditedDevices: r.credited_devices,
    creditedCores: r.credited_cores,
    score: r.score
  }
}

/**
 * A run's whole ledger in chain order, in memory at once. For tests and offline tools only:
 * public reads page it (`readLedgerPage`), since one request holding a long run's ledger (37 MB
 * at 20,000 rows) blocked the event loop and, past V8's longest string, failed for ever.
 */
export async function readLedger (db: Kysely<Database>, runId: string): Promise<LedgerEntry[]> {
  const rows = await db.selectFrom('ledger').selectAll().where('run_id', '=', runId).orderBy('seq').execute()
  return rows.map(entryOf)
}

/** The most rows one page of a ledger holds (`ledger.entries`, and each read of an export). */
export const LEDGER_PAGE_MAX = 1000

/**
 * About the most bytes of JSON one page carries. A node's signed metadata is the part of a row
 * it controls (a loss curve of up to 100,000 points), so pages are cut by size as well as by
 * count. An honest row is 1–2 KB (more with a long loss curve), so a page of them is most of
 * the LEDGER_PAGE_MAX rows; a batch of 16 pages (tRPC's most) is then about 16 MiB of JSON.
 */
export const LEDGER_PAGE_BYTES = 1024 * 1024

/**
 * A row's size in an export, about: its variable text (what a node or the coordinator chose)
 * plus the rest (ids, hashes, numbers, the keys' names), which is a few hundred bytes.
 */
const ROW_BYTES = sql<number>`octet_length(coalesce(metadata, '')) + octet_length(coalesce(reason, '')) + octet_length(coalesce(signature, '')) + octet_length(coalesce(executor, '')) + octet_length(peer_id) + 640`

/** One page of a run's ledger. */
export interface LedgerPage {
  /** rows after the asked seq, in chain order */
  entries: LedgerEntry[]
  /** the seq to ask the next page after: the last row's, or the asked one when the page is empty */
  nextSeq: number
  /** no row after this page (up to `throughSeq`, when given) existed when it was read */
  done: boolean
}

/** Where a page starts and how large it may be. */
export interface LedgerPageOptions {
  /** rows with a larger seq (0: from the first) */
  afterSeq?: number
  /** rows at most (LEDGER_PAGE_MAX when absent, and never more) */
  limit?: number
  /** bytes about at most (LEDGER_PAGE_BYTES); a page holds at least one row whatever its size */
  maxBytes?: number
  /** rows with a seq up to this only: an export reads the ledger as it was when asked for */
  throughSeq?: number
}

/**
 * Rows of a run after `afterSeq` in chain order (keyset on seq, the (run_id, seq) index), at most
 * `limit` and about `maxBytes` of them. The database sums the sizes, so no more than the page
 * leaves it. Memory and time per call are one page's, however long the run.
 */
export async function readLedgerPage (db: Kysely<Database>, runId: string, options: LedgerPageOptions = {}): Promise<LedgerPage> {
  const afterSeq = options.afterSeq ?? 0
  const limit = Math.max(1, Math.min(options.limit ?? LEDGER_PAGE_MAX, LEDGER_PAGE_MAX))
  const maxBytes = options.maxBytes ?? LEDGER_PAGE_BYTES
  let candidates = db.selectFrom('ledger').selectAll()
    .select([ROW_BYTES.as('row_bytes'), sql<number>`sum(${ROW_BYTES}) over (order by seq)`.as('end_bytes')])
    .where('run_id', '=', runId).where('seq', '>', afterSeq)
  if (options.throughSeq !== undefined) candidates = candidates.where('seq', '<=', options.throughSeq)
  // A row is in the page when it starts within the budget, so the first one always is.
  const rows = await db.selectFrom(candidates.orderBy('seq').limit(limit).as('p')).selectAll()
    .where(sql<number>`end_bytes - row_bytes`, '<', maxBytes).orderBy('seq').execute()
  const entries = rows.map(entryOf)
  const nextSeq = entries.at(-1)?.seq ?? afterSeq
  let more = db.selectFrom('ledger').select('seq').where('run_id', '=', runId).where('seq', '>', nextSeq)
  if (options.throughSeq !== undefined) more = more.where('seq', '<=', options.throughSeq)
  const done = entries.length === 0 || await more.limit(1).executeTakeFirst() === undefined
  return { entries, nextSeq, done }
}

/** The seq of a run's newest row, 0 when it has none: where an export that starts now ends. */
export async function lastLedgerSeq (db: Kysely<Database>, runId: string): Promise<number> {
  const last = await db.selectFrom('ledger').select('seq').where('run_id', '=', runId).orderBy('seq', 'desc').limit(1).executeTakeFirst()
  return last?.seq ?? 0
}

const CSV_COLUMNS: Array<keyof LedgerEntry> = ['seq', 'runId', 'round', 'nodeId', 'peerId', 'organizationId', 'assignmentId', 'tokens', 'computeSeconds', 'outcome', 'reason', 'metadata', 'signature', 'prevHash', 'hash', 'createdAt', 'executor', 'score', 'devices', 'creditedDevices', 'creditedCores']

/**
 * Columns whose text a node or person chose (a decline's reason): defused for spreadsheets. The
 * rest are ids, hashes, signatures and canonical JSON, written exactly, so the CSV verifies.
 */
const FREE_TEXT_COLUMNS = new Set<keyof LedgerEntry>(['reason', 'executor'])

/** The CSV export's header line, without its line break. */
export function ledgerCsvHeader (): string {
  return CSV_COLUMNS.join(',')
}

/** One row as a line of the CSV export, without its line break. */
export function ledgerCsvLine (e: LedgerEntry): string {
  return CSV_COLUMNS.map((c) => {
    const v = e[c]
    return csvField(typeof v === 'string' || typeof v === 'number' || v === null ? v : String(v), { verbatim: !FREE_TEXT_COLUMNS.has(c) })
  }).join(',')
}

/** The ledger as CSV (RFC 4180), header row first; exports stream the same lines (http/ledger-export.ts). */
export function ledgerToCsv (entries: LedgerEntry[]): string {
  return [ledgerCsvHeader(), ...entries.map(ledgerCsvLine)].join('\r\n') + '\r\n'
}

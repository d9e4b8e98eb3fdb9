import { sql } from 'kysely'
import type { Kysely, Transaction } from 'kysely'
import { csvField, ledgerEntryHash, ledgerGenesisHash } from '@barnraise/protocol'
import type { LedgerEntry, LedgerEntryFields } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'

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

/** A run's ledger in chain order, as exported and verified. */
export async function readLedger (db: Kysely<Database>, runId: string): Promise<LedgerEntry[]> {
  const rows = await db.selectFrom('ledger').selectAll().where('run_id', '=', runId).orderBy('seq').execute()
  return rows.map((r) => ({
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
  }))
}

const CSV_COLUMNS: Array<keyof LedgerEntry> = ['seq', 'runId', 'round', 'nodeId', 'peerId', 'organizationId', 'assignmentId', 'tokens', 'computeSeconds', 'outcome', 'reason', 'metadata', 'signature', 'prevHash', 'hash', 'createdAt', 'executor', 'score', 'devices', 'creditedDevices', 'creditedCores']

/**
 * Columns whose text a node or person chose (a decline's reason): defused for spreadsheets. The
 * rest are ids, hashes, signatures and canonical JSON, written exactly, so the CSV verifies.
 */
const FREE_TEXT_COLUMNS = new Set<keyof LedgerEntry>(['reason', 'executor'])

/** The ledger as CSV (RFC 4180), header row first. */
export function ledgerToCsv (entries: LedgerEntry[]): string {
  const lines = [CSV_COLUMNS.join(',')]
  for (const e of entries) {
    lines.push(CSV_COLUMNS.map((c) => {
      const v = e[c]
      return csvField(typeof v === 'string' || typeof v === 'number' || v === null ? v : String(v), { verbatim: !FREE_TEXT_COLUMNS.has(c) })
    }).join(','))
  }
  return lines.join('\r\n') + '\r\n'
}

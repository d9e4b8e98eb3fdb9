import { parseReportMetadata, verifyReportSignature } from './signed-report.ts'

/** One ledger row as exported (ledger.json) and as hashed. */
export interface LedgerEntry {
  seq: number
  runId: string
  round: number
  nodeId: string | null
  peerId: string
  organizationId: string | null
  assignmentId: string | null
  tokens: number
  computeSeconds: number
  outcome: 'accepted' | 'refused'
  reason: string | null
  /** canonical JSON of the signed report metadata (accepted rows always have it) */
  metadata: string | null
  /** base64 Ed25519 signature by the node over `metadata` */
  signature: string | null
  prevHash: string
  hash: string
  createdAt?: string
  /**
   * What trained the report (typescript, torch-cpu, torch-cuda), as the node signed it; null or
   * absent on rows from before the field existed and on refusals that did not say.
   */
  executor?: string | null
}

export type LedgerEntryFields = Omit<LedgerEntry, 'seq' | 'hash' | 'createdAt'>

const encoder = new TextEncoder()

async function sha256Hex (text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', encoder.encode(text))
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

/** The prev_hash of a run's first row. */
export async function ledgerGenesisHash (runId: string): Promise<string> {
  return await sha256Hex(`barnraise-ledger-genesis:${runId}`)
}

/**
 * The hash that chains a row: sha256 over its fields in a fixed order, including the previous
 * hash. A row with an executor hashes as `barnraise-ledger-v2` with the executor last; a row
 * without one hashes exactly as before the field existed, so old chains still verify.
 */
export async function ledgerEntryHash (e: LedgerEntryFields): Promise<string> {
  const fields = [
    e.runId, e.round, e.nodeId, e.peerId, e.organizationId, e.assignmentId,
    e.tokens, e.computeSeconds, e.outcome, e.reason, e.metadata, e.signature, e.prevHash
  ]
  const executor = e.executor ?? null
  return await sha256Hex(JSON.stringify(executor === null ? ['barnraise-ledger-v1', ...fields] : ['barnraise-ledger-v2', ...fields, executor]))
}

export type LedgerVerdict =
  | { ok: true, rows: number }
  | { ok: false, rows: number, seq: number, index: number, reason: string }

/**
 * Verifies a run's ledger end to end, offline: the chain of hashes from the genesis, each
 * row's own hash, and for accepted rows the node's signature and that the signed metadata
 * says what the row says. Names the first bad row.
 */
export async function verifyLedger (runId: string, entries: LedgerEntry[]): Promise<LedgerVerdict> {
  let prev = await ledgerGenesisHash(runId)
  for (const [index, e] of entries.entries()) {
    const bad = (reason: string): LedgerVerdict => ({ ok: false, rows: entries.length, seq: e.seq, index, reason })
    if (e.runId !== runId) return bad(`row belongs to run ${e.runId}`)
    if (e.prevHash !== prev) return bad('prev_hash does not match the previous row (a row was removed, reordered or inserted)')
    if (await ledgerEntryHash(e) !== e.hash) return bad('hash does not match the row\'s contents (the row was altered)')
    if (e.outcome === 'accepted') {
      if (e.metadata === null || e.signature === null) return bad('accepted row lacks signed metadata')
      if (!await verifyReportSignature(e.peerId, e.metadata, e.signature)) return bad('node signature does not verify')
      const m = parseReportMetadata(e.metadata)
      if (m === undefined) return bad('metadata is not well-formed canonical report metadata (v1 or v2 JSON)')
      if (m.runId !== e.runId || m.round !== e.round || m.assignmentId !== e.assignmentId ||
        m.peerId !== e.peerId || m.tokens !== e.tokens || m.computeSeconds !== e.computeSeconds ||
        (m.executor ?? null) !== (e.executor ?? null)) {
        return bad('row disagrees with what the node signed')
      }
    }
    prev = e.hash
  }
  return { ok: true, rows: entries.length }
}

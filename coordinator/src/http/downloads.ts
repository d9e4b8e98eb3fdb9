import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { readLedgerHeads } from '../ledger/ledger-heads.ts'
import { handleCheckpointRequest } from './checkpoint-downloads.ts'
import type { FolderCache } from '../checkpoints/checkpoint-folder.ts'
import { checkpointProvenance } from '../datasets/provenance.ts'
import { CoordinatorError } from '../errors.ts'
import type { ConcurrencyLimiter } from '../limits/concurrency-limiter.ts'
import { EXPORT_RETRY_AFTER_S, exportsOf, writeLedgerExport } from './ledger-export.ts'
import type { ExportPaging, LedgerExportFormat } from './ledger-export.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/** The largest round a query may name: rounds are stored as Postgres integers. */
const MAX_ROUND = 2 ** 31 - 1

export interface DownloadsContext {
  db: Kysely<Database>
  blobs: BlobStore
  folderCache?: FolderCache
  /** Ledger exports and statement CSVs in progress per address (DEFAULT_EXPORT_LIMITS when absent: one limiter per context). */
  exports?: ConcurrencyLimiter
  /** Page sizes of ledger exports; tests make them small. */
  exportPaging?: ExportPaging
}

const EXPORT_TYPES: Record<LedgerExportFormat, string> = { json: 'application/json; charset=utf-8', csv: 'text/csv; charset=utf-8' }

/**
 * `ledger.json` or `ledger.csv`, streamed a page at a time (ledger-export.ts): a long run's
 * ledger was built whole per request, one string past V8's limit at ~287k rows, and 250
 * clients that did not read held a copy each. Capped per address while in progress (429).
 */
async function sendLedgerExport (ctx: DownloadsContext, req: IncomingMessage, res: ServerResponse, runId: string, format: LedgerExportFormat, clientAddress: string): Promise<void> {
  const slot = exportsOf(ctx).take(clientAddress, 'ledger exports and statement downloads')
  if (!slot.ok) {
    res.setHeader('retry-after', String(EXPORT_RETRY_AFTER_S))
    json(res, 429, { error: slot.reason, code: 'ERR_BUSY' })
    return
  }
  try {
    res.writeHead(200, {
      'content-type': EXPORT_TYPES[format],
      ...(format === 'csv' ? { 'content-disposition': `attachment; filename="ledger-${runId}.csv"` } : {}),
      'access-control-allow-origin': '*'
    })
    if (req.method === 'HEAD') { res.end(); return }
    await writeLedgerExport(ctx.db, runId, format, res, ctx.exportPaging)
  } finally {
    slot.release()
  }
}

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'access-control-allow-origin': '*' })
  res.end(text)
}

/**
 * Plain-HTTP downloads any tool can fetch: runs, checkpoints as Hugging Face folders
 * (checkpoint-downloads.ts), ledgers as CSV or JSON, and the ledger heads the coordinator signed. Returns false when the path is not one of these.
 * `clientAddress` is the caller as per-address limits key it (address-key.ts; behind a trusted proxy, the one it names).
 */
export async function handleDownload (ctx: DownloadsContext, req: IncomingMessage, res: ServerResponse, path: string, clientAddress: string): Promise<boolean> {
  if (!path.startsWith('/api/')) return false
  const parts = path.slice('/api/'.length).split('/')
  if (await handleCheckpointRequest(ctx, req, res, parts)) return true
  if (parts[0] === 'runs' && parts.length === 1) {
    const runs = await ctx.db.selectFrom('runs').select(['id', 'name', 'status', 'current_round', 'tokens_seen']).orderBy('created_at', 'desc').execute()
    json(res, 200, runs.map((r) => ({ id: r.id, name: r.name, status: r.status, round: r.current_round, tokensSeen: r.tokens_seen })))
    return true
  }
  if (parts[0] === 'runs' && parts.length === 3) {
    const runId = parts[1]!
    if (!UUID.test(runId)) { json(res, 400, { error: 'run id must be a uuid' }); return true }
    const run = await ctx.db.selectFrom('runs').select('id').where('id', '=', runId).executeTakeFirst()
    if (run === undefined) { json(res, 404, { error: `no run ${runId}` }); return true }
    if (parts[2] === 'ledger.json' || parts[2] === 'ledger.csv') { await sendLedgerExport(ctx, req, res, runId, parts[2] === 'ledger.json' ? 'json' : 'csv', clientAddress); return true }
    if (parts[2] === 'ledger-heads.json') { json(res, 200, await readLedgerHeads(ctx.db, runId)); return true }
    if (parts[2] === 'documents.json' || parts[2] === 'documents.csv') {
      const roundParam = new URL(req.url ?? '/', 'http://local').searchParams.get('round')
      // Rounds are Postgres integers: a larger number failed the query as a 500 (and an error
      // logged) for anyone who asked; '' and '1e3' are not how a round is written either.
      const round = roundParam === null ? undefined : /^\d{1,10}$/.test(roundParam) ? Number(roundParam) : NaN
      if (round !== undefined && !(round <= MAX_ROUND)) {
        json(res, 400, { error: `round must be a whole number from 0 to ${MAX_ROUND}, the round of one of the run's checkpoints (listed at /api/runs/${runId}/checkpoints)`, code: 'ERR_INVALID_INPUT' })
        return true
      }
      let provenance
      try {
        provenance = await checkpointProvenance(ctx, runId, round, true)
      } catch (err) {
        if (err instanceof CoordinatorError && err.code === 'ERR_NOT_FOUND') { json(res, 404, { error: err.message }); return true }
        if (err instanceof CoordinatorError && err.code === 'ERR_BUSY') { res.setHeader('retry-after', '60'); json(res, 503, { error: err.message }); return true }
        throw err
      }
      if (parts[2] === 'documents.json') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': provenance.json.byteLength, 'access-control-allow-origin': '*' })
        res.end(provenance.json)
        return true
      }
      res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-length': provenance.csv.byteLength, 'content-disposition': `attachment; filename="documents-${runId}-round-${provenance.round}.csv"`, 'access-control-allow-origin': '*' })
      res.end(provenance.csv)
      return true
    }
  }
  json(res, 404, { error: 'not found' })
  return true
}

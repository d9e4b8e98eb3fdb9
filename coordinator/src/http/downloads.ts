import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { ledgerToCsv, readLedger } from '../ledger/ledger.ts'
import { readLedgerHeads } from '../ledger/ledger-heads.ts'
import { handleCheckpointRequest } from './checkpoint-downloads.ts'
import type { FolderCache } from '../checkpoints/checkpoint-folder.ts'
import { checkpointProvenance } from '../datasets/provenance.ts'
import { CoordinatorError } from '../errors.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/** The largest round a query may name: rounds are stored as Postgres integers. */
const MAX_ROUND = 2 ** 31 - 1

export interface DownloadsContext {
  db: Kysely<Database>
  blobs: BlobStore
  folderCache?: FolderCache
}

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'access-control-allow-origin': '*' })
  res.end(text)
}

/**
 * Plain-HTTP downloads any tool can fetch: runs, checkpoints as Hugging Face folders
 * (checkpoint-downloads.ts), ledgers as CSV or JSON, and the ledger heads the coordinator signed. Returns false when the path is not one of these.
 */
export async function handleDownload (ctx: DownloadsContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
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
    if (parts[2] === 'ledger.json') { json(res, 200, await readLedger(ctx.db, runId)); return true }
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
    if (parts[2] === 'ledger.csv') {
      const csv = ledgerToCsv(await readLedger(ctx.db, runId))
      res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="ledger-${runId}.csv"`, 'access-control-allow-origin': '*' })
      res.end(csv)
      return true
    }
  }
  json(res, 404, { error: 'not found' })
  return true
}

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { ModelOps } from '../runs/model-ops.ts'
import type { ResolvedRunSpec } from '../runs/runs.ts'
import { ledgerToCsv, readLedger } from '../ledger/ledger.ts'
import { parseRange } from './range.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const SHA = /^[0-9a-f]{64}$/

export interface DownloadsContext {
  db: Kysely<Database>
  blobs: BlobStore
  ops: ModelOps
}

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'access-control-allow-origin': '*' })
  res.end(text)
}

/** Sends immutable bytes with a strong ETag, honouring If-None-Match and single Range requests. */
function sendImmutable (req: IncomingMessage, res: ServerResponse, bytes: Uint8Array, etag: string, type: string, filename: string): void {
  const common = {
    etag,
    'accept-ranges': 'bytes',
    'cache-control': 'public, max-age=31536000, immutable',
    'content-type': type,
    'content-disposition': `attachment; filename="${filename}"`,
    'access-control-allow-origin': '*'
  }
  if (req.headers['if-none-match'] === etag) { res.writeHead(304, common); res.end(); return }
  const ifRange = req.headers['if-range']
  const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, bytes.byteLength) : undefined
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...common, 'content-range': `bytes */${bytes.byteLength}` })
    res.end()
    return
  }
  if (range !== undefined) {
    res.writeHead(206, { ...common, 'content-range': `bytes ${range.start}-${range.end}/${bytes.byteLength}`, 'content-length': range.end - range.start + 1 })
    res.end(req.method === 'HEAD' ? undefined : bytes.subarray(range.start, range.end + 1))
    return
  }
  res.writeHead(200, { ...common, 'content-length': bytes.byteLength })
  res.end(req.method === 'HEAD' ? undefined : bytes)
}

const TYPES: Record<string, string> = { '.json': 'application/json', '.safetensors': 'application/octet-stream' }

/**
 * Plain-HTTP downloads any tool can fetch: runs, checkpoints as Hugging Face folders, and
 * ledgers as CSV or JSON. Returns false when the path is not one of these.
 */
export async function handleDownload (ctx: DownloadsContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
  if (!path.startsWith('/api/')) return false
  const parts = path.slice('/api/'.length).split('/')
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
    if (parts[2] === 'checkpoints') {
      const rows = await ctx.db.selectFrom('checkpoints').selectAll().where('run_id', '=', runId).orderBy('round').execute()
      json(res, 200, rows.map((c) => ({ round: c.round, tokensSeen: c.tokens_seen, valLoss: c.val_loss, sha256: c.sha256, createdAt: c.created_at.toISOString() })))
      return true
    }
    if (parts[2] === 'ledger.json') { json(res, 200, await readLedger(ctx.db, runId)); return true }
    if (parts[2] === 'ledger.csv') {
      const csv = ledgerToCsv(await readLedger(ctx.db, runId))
      res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="ledger-${runId}.csv"`, 'access-control-allow-origin': '*' })
      res.end(csv)
      return true
    }
  }
  if (parts[0] === 'checkpoints' && parts.length === 3) {
    const [, sha, file] = parts as [string, string, string]
    if (!SHA.test(sha)) { json(res, 400, { error: 'checkpoint id must be a sha256' }); return true }
    const row = await ctx.db.selectFrom('checkpoints').innerJoin('runs', 'runs.id', 'checkpoints.run_id')
      .select(['runs.spec']).where('checkpoints.sha256', '=', sha).executeTakeFirst()
    if (row === undefined) { json(res, 404, { error: `no checkpoint ${sha}` }); return true }
    const files = ctx.ops.huggingFaceFiles((row.spec as ResolvedRunSpec).modelConfig, await ctx.blobs.get(sha))
    const bytes = files.get(file)
    if (bytes === undefined) { json(res, 404, { error: `a checkpoint folder has ${[...files.keys()].join(', ')}` }); return true }
    const ext = file.slice(file.lastIndexOf('.'))
    sendImmutable(req, res, bytes, `"${sha}-${file}"`, TYPES[ext] ?? 'application/octet-stream', file)
    return true
  }
  json(res, 404, { error: 'not found' })
  return true
}

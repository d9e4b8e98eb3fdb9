import type { ServerResponse } from 'node:http'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import { pledgeStatement } from '../pledges/pledge-statements.ts'
import { statementCsvLines } from '../pledges/statement-csv.ts'
import type { ConcurrencyLimiter } from '../limits/concurrency-limiter.ts'
import { EXPORT_RETRY_AFTER_S, exportsOf, writeLines } from './ledger-export.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const ROUTE = /^\/api\/pledges\/([^/]+)\/statement\.csv$/

function json (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'access-control-allow-origin': '*' })
  res.end(text)
}

/**
 * `/api/pledges/:id/statement.csv`: what one pledge bought, row by row, for spreadsheets and
 * accountants. Public like the ledger it is computed from. A money pledge's lists every row the
 * run wrote after it, so like ledger exports a few run at once per address (429 past that: the
 * export limiter of `ctx`, keyed by `clientAddress`) and the lines go out as the client reads
 * them. Returns false for other paths.
 */
export async function handleStatementDownload (ctx: { db: Kysely<Database>, exports?: ConcurrencyLimiter }, res: ServerResponse, path: string, clientAddress: string): Promise<boolean> {
  const m = ROUTE.exec(path)
  if (m === null) return false
  let id: string
  try {
    id = decodeURIComponent(m[1]!).toLowerCase()
  } catch {
    id = ''
  }
  if (!UUID.test(id)) { json(res, 400, { error: 'a pledge id is a UUID; copy the statement link from the Pledges page', code: 'ERR_INVALID_INPUT' }); return true }
  const slot = exportsOf(ctx).take(clientAddress, 'ledger exports and statement downloads')
  if (!slot.ok) {
    res.setHeader('retry-after', String(EXPORT_RETRY_AFTER_S))
    json(res, 429, { error: slot.reason, code: 'ERR_BUSY' })
    return true
  }
  try {
    let statement
    try {
      statement = await pledgeStatement(ctx.db, id)
    } catch (err) {
      if (err instanceof CoordinatorError && err.code === 'ERR_NOT_FOUND') { json(res, 404, { error: err.message, code: err.code }); return true }
      throw err
    }
    res.writeHead(200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="pledge-statement-${id}.csv"`,
      'cache-control': 'no-store',
      'access-control-allow-origin': '*'
    })
    await writeLines(res, statementCsvLines(statement))
    return true
  } finally {
    slot.release()
  }
}

import type { Writable } from 'node:stream'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { lastLedgerSeq, ledgerCsvHeader, ledgerCsvLine, LEDGER_PAGE_BYTES, readLedgerPage } from '../ledger/ledger.ts'
import { ConcurrencyLimiter } from '../limits/concurrency-limiter.ts'
import type { ConcurrencyLimits } from '../limits/concurrency-limiter.ts'

/** The two shapes a ledger is downloaded in. */
export type LedgerExportFormat = 'json' | 'csv'

/**
 * Ledger exports in progress: 3 from one address, 8 from one IPv6 /48, 32 in all. An export
 * holds one page (about 1 MiB) and its socket's buffer until its client has read it; a client
 * that stops reading is cut after the server's idle time (http/server.ts), which frees its slot.
 */
export const DEFAULT_EXPORT_LIMITS: ConcurrencyLimits = { perAddress: 3, perNetwork: 8, total: 32 }

/** Seconds a client refused an export is told to wait (Retry-After): about how long one takes to read. */
export const EXPORT_RETRY_AFTER_S = 10

/** The limiter for a coordinator's ledger exports. */
export function exportLimiter (limits: Partial<ConcurrencyLimits> = {}): ConcurrencyLimiter {
  return new ConcurrencyLimiter({ ...DEFAULT_EXPORT_LIMITS, ...limits })
}

/** Limiters of downloads contexts that brought none, made on first use so each coordinator has its own. */
const defaultLimiters = new WeakMap<object, ConcurrencyLimiter>()

/**
 * The export limiter of a downloads context (http/downloads.ts): the one it brought, else one
 * made for it, shared by ledger exports and pledge statement CSVs.
 */
export function exportsOf (ctx: { exports?: ConcurrencyLimiter }): ConcurrencyLimiter {
  if (ctx.exports !== undefined) return ctx.exports
  let limiter = defaultLimiters.get(ctx)
  if (limiter === undefined) {
    limiter = exportLimiter()
    defaultLimiters.set(ctx, limiter)
  }
  return limiter
}

/** Resolves true once `out` can take more, false if it closed first (the client went away). */
async function drained (out: Writable): Promise<boolean> {
  if (out.destroyed) return false
  return await new Promise((resolve) => {
    const settle = (ok: boolean): void => {
      out.off('drain', onDrain)
      out.off('close', onClose)
      resolve(ok)
    }
    const onDrain = (): void => { settle(true) }
    const onClose = (): void => { settle(false) }
    out.on('drain', onDrain)
    out.on('close', onClose)
  })
}

/** Writes `chunk`, then waits while `out`'s buffer is full; false when the client is gone. */
async function send (out: Writable, chunk: string): Promise<boolean> {
  if (out.destroyed) return false
  if (out.write(chunk)) return true
  return await drained(out)
}

/**
 * Writes `lines` to `out`, each followed by CRLF, `perChunk` at a time, waiting for `out` to drain
 * between chunks, then ends it: a long CSV built in memory goes out without a second copy as one
 * string. Returns false (and leaves `out`) when the client went away first.
 */
export async function writeLines (out: Writable, lines: Iterable<string>, perChunk = 1000): Promise<boolean> {
  let chunk = ''
  let n = 0
  for (const line of lines) {
    chunk += line + '\r\n'
    if (++n < perChunk) continue
    if (!await send(out, chunk)) return false
    chunk = ''
    n = 0
  }
  if (out.destroyed) return false
  out.end(chunk)
  return true
}

/** Sizes of an export's reads; tests make pages small to span several. */
export interface ExportPaging { rows?: number, bytes?: number }

/**
 * Writes a run's ledger to `out` as `ledger.json` (the array `JSON.stringify` gives for every
 * row) or `ledger.csv` (`ledgerToCsv`'s text), byte for byte, reading it a page at a time
 * (keyset on seq) and waiting for `out` to drain before the next, so memory is one page
 * whatever the ledger's size and a slow reader slows only its own export. The ledger is
 * exported as it was when this started: rows appended meanwhile are left for the next export.
 * Ends `out` when done; returns false (and leaves it) when the client went away first.
 */
export async function writeLedgerExport (db: Kysely<Database>, runId: string, format: LedgerExportFormat, out: Writable, paging: ExportPaging = {}): Promise<boolean> {
  const throughSeq = await lastLedgerSeq(db, runId)
  if (!await send(out, format === 'json' ? '[' : ledgerCsvHeader() + '\r\n')) return false
  let afterSeq = 0
  let first = true
  while (throughSeq > afterSeq) {
    const page = await readLedgerPage(db, runId, { afterSeq, throughSeq, limit: paging.rows, maxBytes: paging.bytes ?? LEDGER_PAGE_BYTES })
    if (page.entries.length === 0) break
    let chunk = ''
    for (const entry of page.entries) {
      if (format === 'json') {
        chunk += (first ? '' : ',') + JSON.stringify(entry)
      } else {
        chunk += ledgerCsvLine(entry) + '\r\n'
      }
      first = false
    }
    afterSeq = page.nextSeq
    if (!await send(out, chunk)) return false
    if (page.done) break
  }
  if (out.destroyed) return false
  out.end(format === 'json' ? ']' : '')
  return true
}

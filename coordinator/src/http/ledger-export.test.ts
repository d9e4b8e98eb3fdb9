// ledger.json and ledger.csv are streamed a page at a time: the bytes must be exactly what the
// whole-ledger serialization gave (ledger verify and spreadsheets read them), a slow reader must
// hold the export back rather than have it buffered, and one address may run only a few at once.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import type { Kysely } from 'kysely'
import { openDatabase } from '../db/open-database.ts'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { ledgerToCsv, readLedger } from '../ledger/ledger.ts'
import { emptyRun, writeLedgerRows } from '../../../test/support/ledger-rows.ts'
import { handleDownload } from './downloads.ts'
import { handleStatementDownload } from './statement-download.ts'
import { pledgeStatement } from '../pledges/pledge-statements.ts'
import { statementToCsv } from '../pledges/statement-csv.ts'
import { seedLongRun } from '../../../test/support/long-run.ts'
import type { DownloadsContext } from './downloads.ts'
import { addressKey } from './address-key.ts'
import { DEFAULT_EXPORT_LIMITS, EXPORT_RETRY_AFTER_S, exportLimiter, writeLedgerExport } from './ledger-export.ts'

/** The exports as they were built before streaming: the whole ledger, serialized at once. */
async function wholeLedger (db: Kysely<Database>, runId: string): Promise<{ rows: number, json: string, csv: string }> {
  const entries = await readLedger(db, runId)
  return { rows: entries.length, json: JSON.stringify(entries), csv: ledgerToCsv(entries) }
}

/**
 * The statement and ledger downloads behind a plain HTTP server, as http/server.ts routes them.
 * The client's address is the socket's, or for a test that speaks for several clients, its
 * `x-test-address` header.
 */
async function downloadsServer (ctx: DownloadsContext): Promise<{ base: string, close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const address = String(req.headers['x-test-address'] ?? addressKey(req.socket.remoteAddress ?? ''))
    const path = (req.url ?? '/').split('?')[0]!
    const served = async (): Promise<boolean> => await handleStatementDownload(ctx, res, path, address) || await handleDownload(ctx, req, res, path, address)
    served().catch((err: unknown) => {
      res.destroy(err as Error)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) }
  }
}

test('ledger.json and ledger.csv stream the exact bytes of the whole-ledger serialization, across many pages', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  const [run, other, empty] = [await emptyRun(db, 'exported'), await emptyRun(db, 'other'), await emptyRun(db, 'empty')]
  await writeLedgerRows(db, [run, other], 2_300)
  const ctx: DownloadsContext = { db, blobs: {} as BlobStore }
  const small: DownloadsContext = { db, blobs: {} as BlobStore, exportPaging: { rows: 7, bytes: 3_000 } }
  const server = await downloadsServer(ctx)
  const smallServer = await downloadsServer(small)
  try {
    const whole = await wholeLedger(db, run)
    assert.equal(whole.rows, 2_300, 'three default pages (LEDGER_PAGE_MAX rows each)')
    for (const [name, base] of [['default pages of 1000 rows', server.base], ['pages of at most 7 rows and ~3 kB', smallServer.base]]) {
      const json = await fetch(`${base}/api/runs/${run}/ledger.json`)
      assert.equal(json.status, 200)
      assert.equal(json.headers.get('content-type'), 'application/json; charset=utf-8')
      assert.equal(json.headers.get('access-control-allow-origin'), '*')
      assert.equal(await json.text(), whole.json, `${name}: ledger.json`)
      const csv = await fetch(`${base}/api/runs/${run}/ledger.csv`)
      assert.equal(csv.status, 200)
      assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8')
      assert.equal(csv.headers.get('content-disposition'), `attachment; filename="ledger-${run}.csv"`)
      assert.equal(await csv.text(), whole.csv, `${name}: ledger.csv`)
      // A run without rows: an empty array, a header line.
      assert.equal(await (await fetch(`${base}/api/runs/${empty}/ledger.json`)).text(), '[]')
      assert.equal(await (await fetch(`${base}/api/runs/${empty}/ledger.csv`)).text(), ledgerToCsv([]))
    }
    // HEAD says what a GET would send, and reads no rows.
    const head = await fetch(`${server.base}/api/runs/${run}/ledger.csv`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    assert.equal(head.headers.get('content-type'), 'text/csv; charset=utf-8')
    assert.equal(await head.text(), '')
    // Unknown and malformed runs are refused as before.
    assert.equal((await fetch(`${server.base}/api/runs/00000000-0000-4000-8000-000000000000/ledger.json`)).status, 404)
    assert.equal((await fetch(`${server.base}/api/runs/not-a-run/ledger.csv`)).status, 400)
  } finally {
    await server.close()
    await smallServer.close()
    await database.close()
  }
}, 120_000)

/** Polls `condition` once per event-loop turn until it holds (the test's own timeout bounds it). */
async function until (condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve))
}

test('an export waits for a slow reader to drain before it reads the next page', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  try {
    const run = await emptyRun(db)
    await writeLedgerRows(db, [run], 40)
    // A reader that takes each chunk only when the test lets it, with no room to buffer.
    const held: Array<() => void> = []
    const chunks: string[] = []
    const out = new Writable({
      highWaterMark: 1,
      write: (chunk: Buffer, _encoding, callback) => { chunks.push(chunk.toString()); held.push(callback) }
    })
    let finished = false
    out.on('finish', () => { finished = true })
    // Writing while the reader's buffer is full is ignoring it: the export must wait for 'drain'.
    let overruns = 0
    const write = out.write.bind(out) as (chunk: string) => boolean
    out.write = ((chunk: string) => {
      if (out.writableNeedDrain) overruns++
      return write(chunk)
    }) as typeof out.write
    let settled = false
    const exported = writeLedgerExport(db, run, 'json', out, { rows: 6 }).finally(() => { settled = true })
    let waits = 0
    while (!finished) {
      await until(() => held.length > 0 || overruns > 0 || finished)
      if (overruns > 0 || finished) break
      // The export should now be waiting on the reader (a 'drain' listener), or be done writing.
      await until(() => out.listenerCount('drain') > 0 || settled || overruns > 0)
      if (overruns > 0) break
      if (out.listenerCount('drain') > 0) waits++
      held.shift()!()
    }
    assert.equal(overruns, 0, 'no chunk was written while the reader was full')
    assert.equal(await exported, true)
    await until(() => finished)
    // The opening bracket and seven pages of rows, each waited on; then the closing bracket.
    assert.equal(waits, 8)
    assert.equal(chunks.join(''), (await wholeLedger(db, run)).json)
  } finally {
    await database.close()
  }
}, 60_000)

test('an export stops reading when its client goes away', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  try {
    const run = await emptyRun(db)
    await writeLedgerRows(db, [run], 40)
    let reads = 0
    const out = new Writable({
      highWaterMark: 1,
      write: (_chunk: Buffer, _encoding, callback) => {
        reads++
        // The client hangs up after the first page instead of reading on.
        if (reads === 2) { out.destroy(); return }
        callback()
      }
    })
    out.on('error', () => {})
    assert.equal(await writeLedgerExport(db, run, 'csv', out, { rows: 6 }), false)
    assert.equal(reads, 2, 'the header and one page, then nothing more was read for a closed client')
  } finally {
    await database.close()
  }
}, 60_000)

test('one address runs a few exports at once: past that 429 with Retry-After; others are not held back, and a finished export frees its slot', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  const exports = exportLimiter()
  const ctx: DownloadsContext = { db, blobs: {} as BlobStore, exports }
  const server = await downloadsServer(ctx)
  try {
    const run = await emptyRun(db)
    await writeLedgerRows(db, [run], 30)
    const expected = (await wholeLedger(db, run)).json
    const get = async (address: string, file = 'ledger.json'): Promise<Response> => await fetch(`${server.base}/api/runs/${run}/${file}`, { headers: { 'x-test-address': address } })
    // Exports in progress from 203.0.113.7 (each holds its slot until it is read to the end).
    const busy = Array.from({ length: DEFAULT_EXPORT_LIMITS.perAddress }, () => exports.take('203.0.113.7', 'ledger exports'))
    assert.ok(busy.every((slot) => slot.ok))
    for (const file of ['ledger.json', 'ledger.csv']) {
      const refused = await get('203.0.113.7', file)
      assert.equal(refused.status, 429)
      assert.equal(refused.headers.get('retry-after'), String(EXPORT_RETRY_AFTER_S))
      const body = await refused.json() as { error: string, code: string }
      assert.equal(body.code, 'ERR_BUSY')
      assert.match(body.error, new RegExp(`already in progress from your address \\(at most ${DEFAULT_EXPORT_LIMITS.perAddress} at once\\)`))
    }
    // Another address is served meanwhile, and its slot is free again once it has read it all.
    const other = await get('198.51.100.2')
    assert.equal(other.status, 200)
    assert.equal(await other.text(), expected)
    await until(() => exports.held('198.51.100.2') === 0)
    // One of the first address's exports ends: it may start one more.
    for (const slot of busy) if (slot.ok) slot.release()
    const again = await get('203.0.113.7')
    assert.equal(again.status, 200)
    assert.equal(await again.text(), expected)
    await until(() => exports.held() === 0)

    // A client that hangs up mid-export frees its slot too.
    const aborted = new AbortController()
    const res = await fetch(`${server.base}/api/runs/${run}/ledger.json`, { headers: { 'x-test-address': '203.0.113.9' }, signal: aborted.signal })
    assert.equal(res.status, 200)
    aborted.abort()
    await until(() => exports.held() === 0)
  } finally {
    await server.close()
    await database.close()
  }
}, 60_000)

test('a pledge statement CSV streams every row, and counts toward the same per-address cap as ledger exports', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  const exports = exportLimiter()
  const server = await downloadsServer({ db, blobs: {} as BlobStore, exports })
  try {
    const from = new Date('2026-04-01T00:00:00Z')
    const run = await seedLongRun(db, { rounds: 300, nodes: 5, from })
    const pledge = await db.insertInto('pledges').values({ run_id: run.runId, user_id: run.userId, organization_id: null, kind: 'usd', amount: 5, note: null, created_at: new Date(from.getTime() - 60_000) })
      .returning('id').executeTakeFirstOrThrow()
    const url = `${server.base}/api/pledges/${pledge.id}/statement.csv`
    const expected = statementToCsv(await pledgeStatement(db, pledge.id))
    assert.equal(expected.split('\r\n').length, 1 + 1500 + 1, 'a header, 1,500 rows (more than one chunk of lines), the last line break')
    const busy = Array.from({ length: DEFAULT_EXPORT_LIMITS.perAddress }, () => exports.take('203.0.113.7', 'ledger exports'))
    const refused = await fetch(url, { headers: { 'x-test-address': '203.0.113.7' } })
    assert.equal(refused.status, 429)
    assert.equal(refused.headers.get('retry-after'), String(EXPORT_RETRY_AFTER_S))
    const served = await fetch(url, { headers: { 'x-test-address': '198.51.100.2' } })
    assert.equal(served.status, 200)
    assert.equal(served.headers.get('content-disposition'), `attachment; filename="pledge-statement-${pledge.id}.csv"`)
    assert.equal(await served.text(), expected)
    for (const slot of busy) if (slot.ok) slot.release()
    await until(() => exports.held() === 0)
  } finally {
    await server.close()
    await database.close()
  }
}, 60_000)

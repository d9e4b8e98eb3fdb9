// ledger.entries is public: a read costs one page (rows and bytes bounded), never the whole
// ledger, and paging from seq 0 with nextSeq covers every row of the run once, in chain order.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { TRPCError } from '@trpc/server'
import { openDatabase } from '../db/open-database.ts'
import type { Database } from '../db/schema.ts'
import type { ApiContext } from '../api/context.ts'
import { ledgerRouter } from '../api/routers/ledger.ts'
import { createTestDatabase } from '../../../test/support/postgres.ts'
import { emptyRun, writeLedgerRows } from '../../../test/support/ledger-rows.ts'
import { LEDGER_PAGE_MAX, readLedger, readLedgerPage } from './ledger.ts'
import type { LedgerPage, LedgerPageOptions } from './ledger.ts'

/** Every page from seq 0 on, as a reader follows nextSeq until done. */
async function allPages (db: Kysely<Database>, runId: string, options: LedgerPageOptions): Promise<LedgerPage[]> {
  const pages: LedgerPage[] = []
  for (let afterSeq = 0; ;) {
    const page = await readLedgerPage(db, runId, { ...options, afterSeq })
    pages.push(page)
    if (page.done) return pages
    assert.ok(page.nextSeq > afterSeq, `a page after ${afterSeq} moved on`)
    afterSeq = page.nextSeq
  }
}

for (const kind of ['pglite', 'postgres'] as const) {
  test(`${kind}: pages cover a run's rows once each, in chain order, at most limit rows a page, and skip other runs' rows`, async () => {
    const fresh = kind === 'postgres' ? await createTestDatabase() : undefined
    const database = await openDatabase({ dataDir: 'memory://', databaseUrl: fresh?.url })
    try {
      const db = database.db
      const [a, b] = [await emptyRun(db, 'a'), await emptyRun(db, 'b')]
      const seqs = await writeLedgerRows(db, [a, b], 50)
      const pages = await allPages(db, a, { limit: 7 })
      assert.deepEqual(pages.map((p) => p.entries.length), [7, 7, 7, 7, 7, 7, 7, 1])
      assert.deepEqual(pages.flatMap((p) => p.entries.map((e) => e.seq)), seqs.get(a))
      assert.deepEqual(pages.flatMap((p) => p.entries), await readLedger(db, a), 'the same rows, field for field, as the whole ledger')
      assert.ok(pages.every((p) => p.nextSeq === p.entries.at(-1)!.seq))
      assert.deepEqual(pages.map((p) => p.done), [false, false, false, false, false, false, false, true])

      // A page that ends exactly at the last row says so: no empty page to ask for.
      const even = await allPages(db, a, { limit: 10 })
      assert.deepEqual(even.map((p) => p.entries.length), [10, 10, 10, 10, 10])
      assert.equal(even.at(-1)!.done, true)

      // After the last row (a reader that is up to date): nothing, at the same place.
      const last = seqs.get(a)!.at(-1)!
      assert.deepEqual(await readLedgerPage(db, a, { afterSeq: last }), { entries: [], nextSeq: last, done: true })
      // A run with no rows, a run that does not exist: empty, done.
      assert.deepEqual(await readLedgerPage(db, await emptyRun(db, 'c')), { entries: [], nextSeq: 0, done: true })
      assert.deepEqual(await readLedgerPage(db, '00000000-0000-4000-8000-000000000000', { afterSeq: 12 }), { entries: [], nextSeq: 12, done: true })

      // throughSeq ends the ledger where an export started; a limit past the most is the most.
      const through = seqs.get(a)![19]!
      const upTo = await allPages(db, a, { limit: 8, throughSeq: through })
      assert.deepEqual(upTo.flatMap((p) => p.entries.map((e) => e.seq)), seqs.get(a)!.slice(0, 20))
      assert.equal(upTo.at(-1)!.done, true)
      assert.equal((await readLedgerPage(db, a, { limit: LEDGER_PAGE_MAX * 5 })).entries.length, 50)
    } finally {
      await database.close()
      await fresh?.drop()
    }
  }, 60_000)

  test(`${kind}: a page is cut by size as well: rows a node made large come a few at a time, and one larger than a page alone`, async () => {
    const fresh = kind === 'postgres' ? await createTestDatabase() : undefined
    const database = await openDatabase({ dataDir: 'memory://', databaseUrl: fresh?.url })
    try {
      const db = database.db
      const run = await emptyRun(db)
      const seqs = (await writeLedgerRows(db, [run], 30, { metadataBytes: 100_000 })).get(run)!
      const pages = await allPages(db, run, { maxBytes: 350_000 })
      // About 100 kB an accepted row: a page holds the rows that start within its 350 kB, so at
      // most four of those (refused rows, without metadata, squeeze in beside them).
      assert.ok(pages.every((p) => p.entries.filter((e) => e.outcome === 'accepted').length <= 4), JSON.stringify(pages.map((p) => p.entries.length)))
      assert.ok(pages.length >= 6, `${pages.length} pages`)
      assert.deepEqual(pages.flatMap((p) => p.entries.map((e) => e.seq)), seqs)
      for (const p of pages) {
        const bytes = p.entries.slice(0, -1).reduce((n, e) => n + JSON.stringify(e).length, 0)
        assert.ok(bytes < 350_000, `${bytes} bytes before a page's last row`)
      }
      // A budget smaller than one row still moves on a row at a time.
      const single = await allPages(db, run, { maxBytes: 1 })
      assert.deepEqual(single.map((p) => p.entries.length), Array(30).fill(1))
    } finally {
      await database.close()
      await fresh?.drop()
    }
  }, 60_000)
}

/** ledger.entries as an anonymous caller sees it. */
function entriesCaller (db: Kysely<Database>): ReturnType<typeof ledgerRouter.createCaller> {
  return ledgerRouter.createCaller({ db, user: null, setResponseHeader: () => {} } as unknown as ApiContext)
}

test('ledger.entries answers LEDGER_PAGE_MAX rows a page at most, and refuses a bad page before reading anything', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  try {
    const db = database.db
    const run = await emptyRun(db)
    const seqs = (await writeLedgerRows(db, [run], LEDGER_PAGE_MAX + 200)).get(run)!
    const caller = entriesCaller(db)
    const first = await caller.entries({ runId: run })
    assert.equal(first.entries.length, LEDGER_PAGE_MAX, 'the default page is the most')
    assert.equal(first.done, false)
    const second = await caller.entries({ runId: run, afterSeq: first.nextSeq })
    assert.equal(second.entries.length, 200)
    assert.equal(second.done, true)
    assert.deepEqual([...first.entries, ...second.entries].map((e) => e.seq), seqs)
    const small = await caller.entries({ runId: run, afterSeq: seqs[9]!, limit: 3 })
    assert.deepEqual(small.entries.map((e) => e.seq), seqs.slice(10, 13))

    const refused = async (input: unknown): Promise<string> => {
      const err = await caller.entries(input as { runId: string }).then(() => undefined, (e: unknown) => e)
      assert.ok(err instanceof TRPCError, `${JSON.stringify(input)} was answered`)
      assert.equal(err.code, 'BAD_REQUEST')
      return err.message
    }
    assert.match(await refused({ runId: run, limit: LEDGER_PAGE_MAX + 1 }), /at most 1000 rows; ask for the next page with afterSeq/)
    assert.match(await refused({ runId: run, limit: 0 }), /at least 1 row/)
    assert.match(await refused({ runId: run, limit: 2.5 }), /whole number/)
    assert.match(await refused({ runId: run, afterSeq: -1 }), /0 or more/)
    assert.match(await refused({ runId: run, afterSeq: 1.5 }), /whole number/)
    assert.match(await refused({ runId: run, afterSeq: 2 ** 64 }), /afterSeq/)
    assert.match(await refused({ runId: run, afterSeq: '10' }), /afterSeq/)
    assert.match(await refused({ runId: 'run-1' }), /a run id is a UUID/)
  } finally {
    await database.close()
  }
}, 60_000)

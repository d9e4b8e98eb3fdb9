import { test } from 'vitest'
import assert from 'node:assert/strict'
import { readLedgerAfter, withNewLedgerRows } from './ledger-pages.ts'
import type { LedgerPageAnswer } from './ledger-pages.ts'

interface Row { seq: number }

/** A coordinator stand-in holding `rows`, answering pages of `size`, and recording where each page was asked from. */
function ledger (rows: Row[], size: number): { fetchPage: (afterSeq: number) => Promise<LedgerPageAnswer<Row>>, asked: number[] } {
  const asked: number[] = []
  return {
    asked,
    fetchPage: async (afterSeq) => {
      asked.push(afterSeq)
      const after = rows.filter((r) => r.seq > afterSeq)
      const entries = after.slice(0, size)
      return { entries, nextSeq: entries.at(-1)?.seq ?? afterSeq, done: after.length <= size }
    }
  }
}

const seqs = (rows: readonly Row[]): number[] => rows.map((r) => r.seq)

test('the first read follows the pages to the end; a refresh asks only after the last row held and appends', async () => {
  // Seqs are install-wide, so a run's rows skip numbers.
  const rows = [3, 4, 9, 10, 11, 20, 21].map((seq) => ({ seq }))
  const first = ledger(rows, 3)
  const held = await withNewLedgerRows([], first.fetchPage)
  assert.deepEqual(seqs(held), [3, 4, 9, 10, 11, 20, 21])
  assert.deepEqual(first.asked, [0, 9, 20])

  const quiet = ledger(rows, 3)
  assert.equal(await withNewLedgerRows(held, quiet.fetchPage), held, 'nothing new: the same array, nothing re-rendered')
  assert.deepEqual(quiet.asked, [21])

  const grown = ledger([...rows, { seq: 30 }, { seq: 31 }], 3)
  assert.deepEqual(seqs(await withNewLedgerRows(held, grown.fetchPage)), [3, 4, 9, 10, 11, 20, 21, 30, 31])
  assert.deepEqual(grown.asked, [21])
})

test('a page that does not move on is an error, not an endless loop', async () => {
  const stuck = async (afterSeq: number): Promise<LedgerPageAnswer<Row>> => ({ entries: [], nextSeq: afterSeq, done: false })
  await assert.rejects(readLedgerAfter(stuck, 5), /after seq 5 did not move on/)
})

// A pledge's statement is public (pledges.statement, /api/pledges/:id/statement.csv), and a money
// pledge counts every ledger row after it: its cost must grow with those rows, not rounds × rows.
// Counted by reads of each row (test/support/read-counts.ts), not timed.
import { test, vi } from 'vitest'
import assert from 'node:assert/strict'
import { databaseForFile } from '../../../test/support/file-database.ts'
import { ReadCounter } from '../../../test/support/read-counts.ts'
import { seedLongRun } from '../../../test/support/long-run.ts'
import { pledgeStatement } from './pledge-statements.ts'

// The deliveries are built from ledger rows in JavaScript: counted where they are handed out.
const slot = vi.hoisted(() => ({ counter: undefined as undefined | { wrap: <T extends object>(rows: T[]) => T[] } }))
vi.mock('./run-deliveries.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('./run-deliveries.ts')>()
  return {
    ...real,
    loadRunDeliveries: async (...args: Parameters<typeof real.loadRunDeliveries>) => {
      const rows = await real.loadRunDeliveries(...args)
      return slot.counter?.wrap(rows) ?? rows
    }
  }
})

const file = databaseForFile()

test('a money pledge\'s statement reads each counted row and checkpoint a few times, not once per round', async () => {
  const { db } = file
  const rounds = 40
  const nodes = 6
  const from = new Date('2026-01-01T00:00:00Z')
  const run = await seedLongRun(db, { rounds, nodes, from })
  const pledge = await db.insertInto('pledges').values({ run_id: run.runId, user_id: run.userId, organization_id: null, kind: 'usd', amount: 100, note: null, created_at: new Date(from.getTime() - 60_000) })
    .returning('id').executeTakeFirstOrThrow()
  const counter = new ReadCounter()
  slot.counter = counter
  const statement = await pledgeStatement(db.withPlugin(counter.plugin), pledge.id)
  slot.counter = undefined
  assert.equal(statement.scope, 'run')
  assert.equal(statement.rows.length, rounds * nodes, 'every accepted row after the pledge')
  assert.equal(statement.checkpoints.length, rounds)
  assert.ok(statement.checkpoints.every((c) => c.state === 'written' && c.tokens === 100 * nodes && c.valLoss !== null), 'each round\'s tokens and kept checkpoint')
  assert.equal(statement.totals.tokens, rounds * nodes * 100)
  const most = counter.mostReadsPerRow()
  // Filtering every counted row (and every kept checkpoint) for each of 40 rounds reads each 40 times.
  assert.ok(most.perRow <= 8, `${most.property} was read ${most.perRow} times per row`)
})

test('a batch of the same public statements costs one computation, and the API lists the oldest rows of a long one', async () => {
  const { db } = file
  const rounds = 30
  const nodes = 4
  const from = new Date('2026-02-01T00:00:00Z')
  const run = await seedLongRun(db, { rounds, nodes, from })
  const pledges = await db.insertInto('pledges').values(['usd', 'usd'].map((kind, i) => ({ run_id: run.runId, user_id: run.userId, organization_id: null, kind: kind as 'usd', amount: 10 + i, note: null, created_at: new Date(from.getTime() - 60_000 + i) })))
    .returning('id').execute()
  const counter = new ReadCounter()
  slot.counter = counter
  // 16 calls at once, as one tRPC batch runs them: two statements, each asked for eight times.
  const answers = await Promise.all(Array.from({ length: 16 }, async (_, i) => await pledgeStatement(db, pledges[i % 2]!.id, { maxRows: 50 })))
  slot.counter = undefined
  // The deliveries of each money pledge are loaded once, not once per call.
  assert.equal(counter.rows, 2 * rounds * nodes, `${counter.rows} delivery rows handed out for 16 calls`)
  for (const s of answers) {
    assert.equal(s.rows.length, 50, 'the first 50 rows listed')
    assert.equal(s.totals.reports, rounds * nodes, 'the totals count every row')
    assert.deepEqual(s.rows.map((r) => r.round), Array.from({ length: 50 }, (_, k) => 1 + Math.floor(k / nodes)), 'oldest first')
  }
  // Every row when no limit is asked for (the CSV), computed afresh once the others are done.
  assert.equal((await pledgeStatement(db, pledges[0]!.id)).rows.length, rounds * nodes)
})

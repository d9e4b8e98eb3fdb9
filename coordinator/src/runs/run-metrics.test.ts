// metrics.run is public and refetched on every change: its cost must grow with a run's rows,
// not with rounds × rows. Counted by reads of each row (test/support/read-counts.ts), not timed.
import { test, vi } from 'vitest'
import assert from 'node:assert/strict'
import { databaseForFile } from '../../../test/support/file-database.ts'
import { ReadCounter } from '../../../test/support/read-counts.ts'
import { seedLongRun } from '../../../test/support/long-run.ts'
import { runMetrics } from './run-metrics.ts'

// The deliveries are built from ledger rows in JavaScript: counted where they are handed out.
const slot = vi.hoisted(() => ({ counter: undefined as undefined | { wrap: <T extends object>(rows: T[]) => T[] } }))
vi.mock('../pledges/run-deliveries.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../pledges/run-deliveries.ts')>()
  return {
    ...real,
    loadRunDeliveries: async (...args: Parameters<typeof real.loadRunDeliveries>) => {
      const rows = await real.loadRunDeliveries(...args)
      return slot.counter?.wrap(rows) ?? rows
    }
  }
})

const file = databaseForFile()

test('a run\'s metrics read each work and ledger row a few times, not once per round', async () => {
  const { db } = file
  const rounds = 40
  const nodes = 6
  const run = await seedLongRun(db, { rounds, nodes, from: new Date('2026-01-01T00:00:00Z') })
  const counter = new ReadCounter()
  slot.counter = counter
  const m = await runMetrics(db.withPlugin(counter.plugin), run.runId, null)
  slot.counter = undefined
  assert.equal(m.rounds.length, rounds)
  assert.ok(m.rounds.every((r) => r.nodes === nodes && r.reported === nodes && r.tokens === 100 * nodes))
  assert.equal(m.labs.length, 2)
  assert.ok(m.labRounds.every((r) => r.tokens.length === 2 && r.tokens[0] === 300 && r.tokens[1] === 300), 'each lab\'s tokens in each round')
  assert.ok(m.delivered.every((d) => Math.abs(d.gpuHours - nodes * 36 / 3600) < 1e-9 && d.cpuCoreHours === 0), 'each round\'s GPU-hours')
  const most = counter.mostReadsPerRow()
  // Scanning every row for each of 40 rounds reads a row's round 40 times or more.
  assert.ok(most.perRow <= 8, `${most.property} was read ${most.perRow} times per row`)
})

// metrics.run is public and refetched on every change: its cost must grow with a run's rows,
// not with rounds × rows, and the rows it hands the event loop with its rounds, not its ledger.
// Counted by reads of each row (test/support/read-counts.ts), not timed.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { databaseForFile } from '../../../test/support/file-database.ts'
import { ReadCounter } from '../../../test/support/read-counts.ts'
import { seedLongRun } from '../../../test/support/long-run.ts'
import { runMetrics } from './run-metrics.ts'

const file = databaseForFile()

test('a run\'s metrics read each work and ledger row a few times, not once per round', async () => {
  const { db } = file
  const rounds = 40
  const nodes = 6
  const run = await seedLongRun(db, { rounds, nodes, from: new Date('2026-01-01T00:00:00Z') })
  const counter = new ReadCounter()
  const m = await runMetrics(db.withPlugin(counter.plugin), run.runId, null)
  assert.equal(m.rounds.length, rounds)
  assert.ok(m.rounds.every((r) => r.nodes === nodes && r.reported === nodes && r.tokens === 100 * nodes))
  assert.equal(m.labs.length, 2)
  assert.ok(m.labRounds.every((r) => r.tokens.length === 2 && r.tokens[0] === 300 && r.tokens[1] === 300), 'each lab\'s tokens in each round')
  assert.ok(m.delivered.every((d) => Math.abs(d.gpuHours - nodes * 36 / 3600) < 1e-9 && d.cpuCoreHours === 0), 'each round\'s GPU-hours')
  const most = counter.mostReadsPerRow()
  // Scanning every row for each of 40 rounds reads a row's round 40 times or more.
  assert.ok(most.perRow <= 8, `${most.property} was read ${most.perRow} times per row`)
  // Deliveries come summed per round and lab (2 labs, alike machines): 40 rounds hand out 80
  // groups, not the 240 accepted rows; with the run, its rounds and its work counts, about 160
  // rows in all. Handing out every accepted row makes it 320 or more.
  assert.ok(counter.rows < 250, `${counter.rows} rows handed out for ${rounds * nodes} accepted ledger rows`)
})

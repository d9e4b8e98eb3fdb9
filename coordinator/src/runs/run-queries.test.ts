// runs.get and runs.list are public and refetched by every open run page: what they cost must
// grow with the rows they return, not with rounds × rows, and runs.get must stay bounded however
// long a run goes. Checked by counting reads and rows (test/support/read-counts.ts), not by timing.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { databaseForFile } from '../../../test/support/file-database.ts'
import { ReadCounter } from '../../../test/support/read-counts.ts'
import { seedLongRun } from '../../../test/support/long-run.ts'
import { RUN_DETAIL_CHECKPOINTS, RUN_DETAIL_ROUNDS, getRunDetail, listRunSummaries, lossCurve, thinEvenly } from './run-queries.ts'

const file = databaseForFile()

test('runs.get groups a run\'s assignments and refusals by round once: each row is read a few times, not once per round', async () => {
  const { db } = file
  const rounds = 40
  const run = await seedLongRun(db, { rounds, nodes: 6, from: new Date('2026-01-01T00:00:00Z') })
  const counter = new ReadCounter()
  const detail = await getRunDetail(db.withPlugin(counter.plugin), run.runId)
  assert.equal(detail.rounds.length, rounds)
  assert.equal(detail.roundsOmitted, 0)
  assert.ok(detail.rounds.every((r) => r.participants.length === 6 && r.refusals.length === 1), 'every round has its own participants and refusal')
  assert.ok(detail.rounds.every((r) => r.participants.every((p) => p.score === 0.01)), 'each participant has its report\'s score')
  assert.deepEqual(detail.rounds[3]!.refusals, [{ peerId: detail.rounds[3]!.refusals[0]!.peerId, reason: 'seeded refusal', score: null }])
  const most = counter.mostReadsPerRow()
  // Scanning every row for each of 40 rounds reads a row's round 40 times.
  assert.ok(most.perRow <= 8, `${most.property} was read ${most.perRow} times per row`)
})

test(`runs.get lists the latest ${RUN_DETAIL_ROUNDS} rounds and says how many older ones, and their tokens, it left out`, async () => {
  const { db } = file
  const run = await seedLongRun(db, { rounds: RUN_DETAIL_ROUNDS + 3, nodes: 1, from: new Date('2026-02-01T00:00:00Z') })
  const counter = new ReadCounter()
  const detail = await getRunDetail(db.withPlugin(counter.plugin), run.runId)
  assert.equal(detail.rounds.length, RUN_DETAIL_ROUNDS)
  assert.equal(detail.roundsOmitted, 3)
  assert.equal(detail.omittedTokens, 3 * 100, 'the omitted rounds\' tokens, so cumulative counts start right')
  assert.deepEqual([detail.rounds[0]!.number, detail.rounds.at(-1)!.number], [4, RUN_DETAIL_ROUNDS + 3], 'oldest first, as before, from the fourth')
  assert.ok(detail.rounds.every((r) => r.participants.length === 1 && r.refusals.length === 1))
  // The omitted rounds' assignments and ledger rows are not read at all.
  const perShownRound = 1 /* round */ + 1 /* assignment */ + 2 /* accepted (scored) and refused ledger rows */ + 1 /* checkpoint */
  assert.ok(counter.rows <= RUN_DETAIL_ROUNDS * perShownRound + 3 /* checkpoints of the omitted rounds */ + 3, `${counter.rows} rows read`)
  assert.equal(detail.checkpoints.length, RUN_DETAIL_ROUNDS + 3, 'every checkpoint is still listed')
})

test(`runs.get thins a longer run's loss curve to ${RUN_DETAIL_CHECKPOINTS} checkpoints, evenly, keeping the first, the newest and the newest with a loss`, async () => {
  const { db } = file
  const rounds = RUN_DETAIL_CHECKPOINTS + 250
  const run = await seedLongRun(db, { rounds, nodes: 1, from: new Date('2026-04-01T00:00:00Z'), name: 'thinned' })
  // The newest checkpoint's loss is still being measured.
  await db.insertInto('checkpoints').values({ sha256: 'e'.repeat(64), run_id: run.runId, round: rounds + 1, tokens_seen: 0, val_loss: null }).execute()
  const detail = await getRunDetail(db, run.runId)
  const listed = detail.checkpoints.map((c) => c.round)
  assert.ok(listed.length <= RUN_DETAIL_CHECKPOINTS && listed.length >= RUN_DETAIL_CHECKPOINTS - 3, `${listed.length} listed`)
  assert.equal(detail.checkpointsOmitted, rounds + 1 - listed.length)
  assert.deepEqual([listed[0], listed.at(-2), listed.at(-1)], [1, rounds, rounds + 1], 'the first, the newest with a loss and the newest')
  assert.deepEqual(listed, [...listed].sort((a, b) => a - b), 'oldest first')
  const gaps = listed.slice(1).map((r, i) => r - listed[i]!)
  assert.ok(Math.max(...gaps) <= 2, `evenly spaced: the widest gap is ${Math.max(...gaps)} rounds`)
  assert.equal(detail.summary.latestValLoss, 5 - (rounds - 1) / rounds, 'the summary\'s loss is the newest measured, thinned or not')
})

test('thinning leaves short lists alone and otherwise gives exactly its bound, in order, each row once', () => {
  const rows = Array.from({ length: 10 }, (_, i) => i)
  assert.equal(thinEvenly(rows, 10), rows)
  for (const [n, most] of [[11, 10], [1001, 1000], [5000, 7], [5, 3], [4, 3], [3, 2], [1500, 999]] as const) {
    const thinned = thinEvenly(Array.from({ length: n }, (_, i) => i), most)
    assert.equal(thinned.length, Math.max(2, most), `${n} → ${most}`)
    assert.equal(new Set(thinned).size, thinned.length, 'no row twice')
    assert.deepEqual(thinned, [...thinned].sort((a, b) => a - b), 'in order')
    assert.ok(thinned.includes(0) && thinned.includes(n - 1))
  }
})

test('a long run\'s loss curve keeps its measured points, not rows without a loss', () => {
  // A large model's run: one checkpoint in ten measured, and the newest still waiting.
  const rows = Array.from({ length: 3000 }, (_, i) => ({ round: i, val_loss: i % 10 === 0 ? 5 - i / 1000 : null }))
  const curve = lossCurve(rows, 1000)
  const measured = rows.filter((r) => r.val_loss !== null)
  assert.equal(curve.length, measured.length + 1, 'every measured point (300 fit), and the newest')
  assert.deepEqual(curve.slice(0, -1), measured)
  assert.equal(curve.at(-1), rows.at(-1))
  // More measured points than fit: thinned evenly among themselves, the first and newest measured kept.
  const dense = Array.from({ length: 3000 }, (_, i) => ({ round: i, val_loss: i % 2 === 0 ? 1 : null }))
  const thinned = lossCurve(dense, 1000)
  assert.equal(thinned.length, 1000)
  assert.ok(thinned.slice(0, -1).every((r) => r.val_loss !== null))
  assert.deepEqual([thinned[0]!.round, thinned.at(-2)!.round, thinned.at(-1)!.round], [0, 2998, 2999])
  assert.equal(lossCurve(rows.slice(0, 5), 1000).length, 5, 'a short run is listed whole')
})

test('runs.list takes each run\'s latest validation loss in the same query as the runs, not every checkpoint row of the install', async () => {
  const { db } = file
  const counter = new ReadCounter()
  const before = (await listRunSummaries(db)).length
  const a = await seedLongRun(db, { rounds: 30, nodes: 1, from: new Date('2026-03-01T00:00:00Z'), name: 'a' })
  const b = await seedLongRun(db, { rounds: 12, nodes: 1, from: new Date('2026-03-02T00:00:00Z'), name: 'b' })
  // A later checkpoint without a loss (not measured yet) does not hide the latest one measured.
  await db.insertInto('checkpoints').values({ sha256: 'f'.repeat(64), run_id: a.runId, round: 31, tokens_seen: 0, val_loss: null }).execute()
  const runs = await listRunSummaries(db.withPlugin(counter.plugin))
  assert.equal(counter.queries, 1)
  assert.equal(counter.rows, before + 2, 'one row per run')
  const byId = new Map(runs.map((r) => [r.id, r]))
  assert.equal(byId.get(a.runId)!.latestValLoss, 5 - 29 / 30)
  assert.equal(byId.get(b.runId)!.latestValLoss, 5 - 11 / 12)
  assert.deepEqual({ ...byId.get(a.runId)!, id: '', createdAt: '', updatedAt: '' }, {
    id: '', name: 'a', status: 'paused', round: 30, tokensSeen: 0, tokenGoal: null, roundsGoal: 60, latestValLoss: 5 - 29 / 30, paramCount: 1000, createdAt: '', updatedAt: '', failureReason: null
  })
})

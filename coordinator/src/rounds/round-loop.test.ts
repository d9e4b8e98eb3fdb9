// The round loop in-process against the real database and blob store: the engine opens and
// closes rounds, the intake takes signed reports from nodes with real Ed25519 keys, and nodes
// score reports through NodeScoring. No libp2p host: the tests call what the protocol services
// call (admit and settle for a report, record and finishScoring for a scorer's answer), in the
// interleavings the services allow.
import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import type { Kysely } from 'kysely'
import { canonicalReportMetadata, encodePseudoGradient, sha256Hex } from '@barnraise/protocol'
import type { ReportHeader, ReportMetadata, ReportResponse } from '@barnraise/protocol'
import { openTestStore } from '../../../test/support/store.ts'
import { tinyRunSpec } from '../../../test/support/runs.ts'
import type { Database } from '../db/schema.ts'
import type { DiskBlobStore } from '../blobs/blob-store.ts'
import { BlobPins } from '../blobs/blob-pins.ts'
import { ChangeFeed } from '../events/change-feed.ts'
import { createLogger } from '../log.ts'
import type { Presence } from '../p2p/presence.ts'
import { changeRunStatus, createRun } from '../runs/runs.ts'
import { NodeScoring } from './node-scoring.ts'
import { ReportIntake } from './report-intake.ts'
import { RoundEngine } from './round-engine.ts'
import { RunCache } from './run-cache.ts'
import { RunLocks } from './run-lock.ts'
import { RoundAccumulator } from './accumulator.ts'
import { readBroadcastResidual, sparseBroadcast, writeBroadcastResidual } from './sparse-broadcast.ts'

let store: Awaited<ReturnType<typeof openTestStore>>
let db: Kysely<Database>
let blobs: DiskBlobStore
const log = createLogger('round-loop-test')

/** Nodes the presence stub reports live (connected and active lately). */
const live = new Set<string>()
const presence = {
  isLive: (peerId: string) => live.has(peerId),
  livePeers: () => [...live],
  executorOf: () => undefined,
  askedForWork: () => {},
  onlineCount: () => live.size
} as unknown as Presence

interface TestNode { id: string, peerId: string, key: PrivateKey }
/** One node in each of six labs. */
const nodes: TestNode[] = []

beforeAll(async () => {
  store = await openTestStore('round-loop')
  db = store.db
  blobs = store.blobs
  for (const [i, lab] of ['Lab A', 'Lab B', 'Lab C', 'Lab D', 'Lab E', 'Lab F'].entries()) {
    const org = (await db.insertInto('organizations').values({ name: lab }).returning('id').executeTakeFirstOrThrow()).id
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key).toString()
    const hardware = { hostname: `h${i}`, platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 1, memoryBytes: 1e9, gpus: [] }
    const id = (await db.insertInto('nodes').values({ peer_id: peerId, organization_id: org, name: `n${i}`, hardware: JSON.stringify(hardware), agent_version: 't', first_seen_at: new Date(Date.now() + i), last_seen_at: new Date() })
      .returning('id').executeTakeFirstOrThrow()).id
    nodes.push({ id, peerId, key })
  }
}, 120_000)
afterAll(async () => { await store?.close() })

/** The coordinator's round loop as coordinator.ts builds it, with its clock left to the test (no timer ticks). */
function roundLoop (cacheOptions: { inlineScoreFlops?: number } = {}): { engine: RoundEngine, intake: ReportIntake, scoring: NodeScoring, cache: RunCache } {
  const changes = new ChangeFeed()
  const cache = new RunCache({ db, blobs, log, ...cacheOptions })
  const scoring = new NodeScoring({ db, presence, windows: async (runId) => await cache.scoringWindowsBlob(runId) })
  const locks = new RunLocks()
  const pins = new BlobPins()
  const intake = new ReportIntake({ db, blobs, pins, cache, locks, changes, log, normBoundRatio: 1, scoring, onAccepted: () => {} })
  const engine = new RoundEngine({ db, blobs, pins, presence, changes, log, cache, locks, intake, scoring })
  return { engine, intake, scoring, cache }
}

/** A started run of the tiny preset on the demo corpus. */
async function startedRun (overrides: Record<string, unknown>): Promise<{ id: string, paramCount: number }> {
  // Rounds end when a test says so (it moves their deadlines), not by the clock.
  const { id, spec } = await createRun({ db, blobs }, tinyRunSpec({ name: 'round loop', codec: 'fp32', roundDeadlineSeconds: 3600, ...overrides }))
  await changeRunStatus(db, id, 'start')
  return { id, paramCount: spec.paramCount }
}

/** New nodes, one per entry, in labs of those names (made once each): the earlier tests' late and missing units back off the file's own. */
async function freshNodes (labNames: string[]): Promise<TestNode[]> {
  const made: TestNode[] = []
  const labs = new Map<string, string>()
  for (const lab of labNames) {
    const org = labs.get(lab) ?? (await db.insertInto('organizations').values({ name: lab }).returning('id').executeTakeFirstOrThrow()).id
    labs.set(lab, org)
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key).toString()
    const id = (await db.insertInto('nodes').values({ peer_id: peerId, organization_id: org, name: `${lab} ${made.length}`, hardware: JSON.stringify({ hostname: lab, platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 1, memoryBytes: 1e9, gpus: [] }), agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date() }).returning('id').executeTakeFirstOrThrow()).id
    made.push({ id, peerId, key })
  }
  return made
}

/** A node's open units in the run, oldest first. */
async function unitsOf (runId: string, node: TestNode): Promise<Array<{ id: string, round: number, tokens: number }>> {
  return await db.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id')
    .select(['assignments.id', 'rounds.number as round', 'assignments.tokens'])
    .where('assignments.run_id', '=', runId).where('assignments.node_id', '=', node.id).where('assignments.status', '=', 'assigned')
    .orderBy('assignments.created_at').execute()
}

/**
 * Three fresh nodes of `labNames`, the only live ones, handed a round in which one unit is doubled:
 * each node's unit, and which of them is the original, its twin and the single one.
 */
async function pairedRound (engine: RoundEngine, runId: string, labNames: [string, string, string]): Promise<{ three: TestNode[], units: Array<{ id: string, round: number, tokens: number }>, original: number, twin: number, single: number }> {
  const three = await freshNodes(labNames)
  live.clear()
  for (const n of three) live.add(n.peerId)
  await engine.tick()
  const units = await Promise.all(three.map(async (n) => (await unitsOf(runId, n))[0]!))
  const rows = await db.selectFrom('assignments').select(['id', 'twin_of']).where('id', 'in', units.map((u) => u.id)).execute()
  const twinRow = rows.find((r) => r.twin_of !== null)!
  const at = (id: string): number => units.findIndex((u) => u.id === id)
  const [original, twin] = [at(twinRow.twin_of!), at(twinRow.id)]
  const single = [0, 1, 2].find((i) => i !== original && i !== twin)!
  return { three, units, original, twin, single }
}

/** Signs and sends a report as the report service does: admission, then the payload settled. */
async function report (intake: ReportIntake, runId: string, node: TestNode, unit: { id: string, round: number }, delta: Float32Array, patch: Partial<ReportMetadata> = {}): Promise<ReportResponse | { ok: false, code: string }> {
  const payload = encodePseudoGradient('fp32', delta)
  const metadata: ReportMetadata = {
    runId, round: unit.round, assignmentId: unit.id, peerId: node.peerId, tokens: 128, computeSeconds: 0, lossCurve: [5],
    codec: 'fp32', payloadBytes: payload.byteLength, payloadSha256: createHash('sha256').update(payload).digest('hex'), executor: 'typescript', ...patch
  }
  const header: ReportHeader = { type: 'report', metadata, signature: Buffer.from(await node.key.sign(canonicalReportMetadata(metadata))).toString('base64') }
  const admitted = await intake.admit(node.peerId, header)
  if (!admitted.ok) return admitted
  return await intake.settle(node.peerId, header, payload)
}

/** A small delta, well inside the norm bound, pointing along `seed`'s pseudo-random direction. */
function delta (paramCount: number, seed: number, scale = 1e-4): Float32Array {
  const out = new Float32Array(paramCount)
  let s = seed >>> 0
  for (let i = 0; i < paramCount; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = scale * ((s / 2 ** 32) * 2 - 1)
  }
  return out
}

test('a round whose held reports are all refused when it settles is not closed with nothing in it: the scorers\' last answer racing the engine\'s tick', async () => {
  // Screened, and scored by nodes (the coordinator's own scoring budget is nothing here).
  const { engine, intake, scoring } = roundLoop({ inlineScoreFlops: 0 })
  const run = await startedRun({ defences: { screening: true } })
  // Only the producer is live when round 1 opens: the round is its one unit.
  live.clear()
  live.add(nodes[0]!.peerId)
  await engine.tick()
  const [unit] = await unitsOf(run.id, nodes[0]!)
  assert.ok(unit !== undefined && unit.round === 1)
  // Two nodes of two other labs come online to score it.
  live.add(nodes[1]!.peerId)
  live.add(nodes[2]!.peerId)
  const held = await report(intake, run.id, nodes[0]!, unit, delta(run.paramCount, 1))
  assert.deepEqual([held.ok, held.ok && held.outcome], [true, 'held'])
  const tasks = await db.selectFrom('scoring_tasks').select(['id', 'node_id']).where('assignment_id', '=', unit.id).execute()
  assert.equal(tasks.length, 2)
  // Both scorers find it points uphill. Each answer is recorded (WorkService → RoundEngine.workFor
  // → NodeScoring.record) before the report is judged under the run's lock; the engine's tick
  // can take the lock in between, with every unit in and no task outstanding.
  for (const t of tasks) await scoring.record(t.node_id, { taskId: t.id, base: 5, after: 5.5, reversed: 4.5 })
  await engine.tick()
  const judged = await db.selectFrom('assignments').select('status').where('id', '=', unit.id).executeTakeFirstOrThrow()
  assert.equal(judged.status, 'refused', 'the settle judged it with its scores: harmful')
  const accepted = await db.selectFrom('ledger').select('seq').where('run_id', '=', run.id).where('outcome', '=', 'accepted').execute()
  assert.equal(accepted.length, 0)
  const round = await db.selectFrom('rounds').select(['status', 'close_reason']).where('run_id', '=', run.id).where('number', '=', 1).executeTakeFirstOrThrow()
  assert.notEqual(round.status, 'closed', `a round with no accepted report made a checkpoint (${round.close_reason ?? ''})`)
  const after = await db.selectFrom('runs').select(['current_round', 'status']).where('id', '=', run.id).executeTakeFirstOrThrow()
  assert.deepEqual(after, { current_round: 0, status: 'running' }, 'the run did not advance on nothing')
  // At its deadline it is abandoned, as a round with nothing accepted is, and opened again.
  await db.updateTable('rounds').set({ deadline_at: new Date(Date.now() - 1000) }).where('run_id', '=', run.id).where('number', '=', 1).execute()
  await engine.tick()
  const rounds = await db.selectFrom('rounds').select(['number', 'status']).where('run_id', '=', run.id).orderBy('opened_at').execute()
  assert.deepEqual(rounds.map((r) => `${r.number} ${r.status}`), ['1 abandoned', '1 open'])
  await changeRunStatus(db, run.id, 'stop')
})

/** Opens round 1 of `runId` for nodes `x` and `y` (one doubles the other's unit) with `steps` inner steps each; returns their units. */
async function pairOfUnits (engine: RoundEngine, runId: string, [x, y]: [TestNode, TestNode], steps: number): Promise<Array<{ id: string, round: number, tokens: number }>> {
  live.clear()
  live.add(x.peerId)
  live.add(y.peerId)
  await engine.tick()
  const units = [(await unitsOf(runId, x))[0]!, (await unitsOf(runId, y))[0]!]
  const pair = await db.selectFrom('assignments').select(['id', 'twin_of']).where('id', 'in', units.map((u) => u.id)).execute()
  assert.equal(pair.filter((a) => a.twin_of !== null).length, 1, 'one unit doubles the other')
  // What throughput sizing hands a node whose timing is 4× (or ¼×) the median's; its twin takes the same.
  await db.updateTable('assignments').set({ inner_steps: steps, tokens: steps * 4 * 33 }).where('id', 'in', units.map((u) => u.id)).execute()
  return units
}

/** `a` moved by `distance` of its own length in an unrelated direction. */
function near (a: Float32Array, distance: number): Float32Array {
  const noise = delta(a.length, 99)
  let na = 0
  let nn = 0
  for (let i = 0; i < a.length; i++) { na += a[i]! * a[i]!; nn += noise[i]! * noise[i]! }
  const k = distance * Math.sqrt(na / nn)
  return a.map((v, i) => v + k * noise[i]!)
}

test('twins are held to the tolerance of the steps their unit trained, not the run\'s: a 4× unit\'s honest pair agrees, a ¼× unit\'s gets no extra slack', async () => {
  const { engine, intake } = roundLoop()
  // Every pair is compared on one class of device: torch on the same CPU model. The tolerance
  // grows by 0.1% a step (fp32: no codec slack): 0.8% for the run's 8 steps, 3.2% for 32, 0.2% for 2.
  const sized = { unitSizing: 'throughput', defences: { redundancy: 0.5 } }
  const pair: [TestNode, TestNode] = [nodes[3]!, nodes[4]!]
  const long = await startedRun(sized)
  const [a, b] = await pairOfUnits(engine, long.id, pair, 32)
  const honest = delta(long.paramCount, 2)
  const first = await report(intake, long.id, pair[0], a!, honest, { executor: 'torch-cpu' })
  assert.deepEqual([first.ok, first.ok && first.outcome], [true, 'held'])
  // 2% apart: more than the run's 8 steps allow, well within what 32 steps do.
  const second = await report(intake, long.id, pair[1], b!, near(honest, 0.02), { executor: 'torch-cpu' })
  assert.deepEqual([second.ok, second.ok ? second.outcome : second.code], [true, 'accepted'])
  const verdicts = await db.selectFrom('ledger').select(['outcome', 'assignment_id']).where('run_id', '=', long.id).execute()
  assert.deepEqual(verdicts.map((v) => v.outcome), ['accepted', 'accepted'], 'both twins credited')

  const short = await startedRun(sized)
  const [c, d] = await pairOfUnits(engine, short.id, pair, 2)
  const first2 = await report(intake, short.id, pair[0], c!, honest, { executor: 'torch-cpu' })
  assert.deepEqual([first2.ok, first2.ok && first2.outcome], [true, 'held'])
  // 0.5% apart: within the run's 8 steps' bound, more than two steps can drift.
  const second2 = await report(intake, short.id, pair[1], d!, near(honest, 0.005), { executor: 'torch-cpu' })
  assert.deepEqual([second2.ok, !second2.ok && second2.code], [false, 'ERR_REDUNDANCY_MISMATCH'])
})

test('a node quarantined while its report is held is neither folded nor credited for it: at its twin\'s arrival, or alone at the round\'s close', async () => {
  const { engine, intake } = roundLoop()
  const doubled = { defences: { redundancy: 0.5 } }
  const quarantine = async (node: TestNode, at: Date | null): Promise<void> => {
    await db.updateTable('nodes').set({ quarantined_at: at, quarantine_reason: at === null ? null : 'flagged in another run' }).where('id', '=', node.id).execute()
  }
  const verdicts = async (runId: string): Promise<string[]> => (await db.selectFrom('ledger').select(['peer_id', 'outcome', 'reason']).where('run_id', '=', runId).orderBy('seq').execute())
    .map((v) => `${v.peer_id === nodes[5]!.peerId ? 'held' : 'twin'} ${v.outcome}${v.reason === null ? '' : ` ${v.reason.split(':')[0]}`}`)
  const pair: [TestNode, TestNode] = [nodes[5]!, nodes[1]!]
  try {
    const first = await startedRun(doubled)
    const [a, b] = await pairOfUnits(engine, first.id, pair, 8)
    const honest = delta(first.paramCount, 3)
    const held = await report(intake, first.id, pair[0], a!, honest)
    assert.deepEqual([held.ok, held.ok && held.outcome], [true, 'held'])
    await quarantine(pair[0], new Date())
    const twin = await report(intake, first.id, pair[1], b!, honest)
    assert.deepEqual([twin.ok, twin.ok && twin.outcome], [true, 'accepted'], 'the twin is accepted alone')
    assert.deepEqual(await verdicts(first.id), ['held refused ERR_QUARANTINED', 'twin accepted'])
    await changeRunStatus(db, first.id, 'stop')

    await quarantine(pair[0], null)
    const second = await startedRun(doubled)
    const [c] = await pairOfUnits(engine, second.id, pair, 8)
    const alone = await report(intake, second.id, pair[0], c!, honest)
    assert.deepEqual([alone.ok, alone.ok && alone.outcome], [true, 'held'])
    await quarantine(pair[0], new Date())
    // Its twin never reports: at the deadline the held report would be folded alone.
    await db.updateTable('rounds').set({ deadline_at: new Date(Date.now() - 1000) }).where('run_id', '=', second.id).execute()
    await engine.tick()
    assert.deepEqual(await verdicts(second.id), ['held refused ERR_QUARANTINED'])
    const round = await db.selectFrom('rounds').select('status').where('run_id', '=', second.id).where('number', '=', 1).orderBy('opened_at').executeTakeFirstOrThrow()
    assert.equal(round.status, 'abandoned', 'nothing accepted: no checkpoint')
    await changeRunStatus(db, second.id, 'stop')
  } finally {
    await quarantine(pair[0], null)
  }
})

test('a doubled unit whose original never reports but whose twin is accepted is not handed out again: its data was trained', async () => {
  const { engine, intake } = roundLoop()
  const run = await startedRun({ defences: { redundancy: 0.5 } })
  const pair: [TestNode, TestNode] = [nodes[2]!, nodes[3]!]
  const units = await pairOfUnits(engine, run.id, pair, 8)
  const rows = await db.selectFrom('assignments').select(['id', 'twin_of', 'ranges']).where('id', 'in', units.map((u) => u.id)).execute()
  const original = rows.find((r) => r.twin_of === null)!
  const twinIndex = units.findIndex((u) => u.id !== original.id)
  const sent = await report(intake, run.id, pair[twinIndex]!, units[twinIndex]!, delta(run.paramCount, 4))
  assert.deepEqual([sent.ok, sent.ok && sent.outcome], [true, 'held'])
  // The original never reports: at the deadline the twin is accepted alone and the round closes.
  await db.updateTable('rounds').set({ deadline_at: new Date(Date.now() - 1000) }).where('run_id', '=', run.id).execute()
  await engine.tick()
  await engine.tick()
  const next = await db.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id').select(['assignments.ranges', 'rounds.number'])
    .where('assignments.run_id', '=', run.id).where('rounds.number', '=', 2).execute()
  assert.ok(next.length > 0, 'round 2 opened')
  assert.ok(next.every((a) => JSON.stringify(a.ranges) !== JSON.stringify(original.ranges)), 'the original\'s ranges are not trained again')
  await changeRunStatus(db, run.id, 'stop')
})

test('a held twin refused with its pair no longer stands as an accepted report on the screen: a third report with its bytes is not a copy', async () => {
  // Scored by nodes (so the screen has no held-out direction for round 1), from two labs: no lab
  // has scorers in two others, so the round doubles units instead.
  const { engine, intake } = roundLoop({ inlineScoreFlops: 0 })
  const run = await startedRun({ defences: { redundancy: 0.5, screening: true } })
  // Fresh nodes: the earlier tests' late and missing units back theirs off.
  const { three, units, original, twin, single } = await pairedRound(engine, run.id, ['Lab G', 'Lab G', 'Lab H'])
  const honest = delta(run.paramCount, 5)
  const held = await report(intake, run.id, three[original]!, units[original]!, honest)
  assert.deepEqual([held.ok, held.ok && held.outcome], [true, 'held'])
  // Its twin sends the opposite: the pair disagrees, and both are refused.
  const flipped = await report(intake, run.id, three[twin]!, units[twin]!, honest.map((x) => -x))
  assert.deepEqual([flipped.ok, !flipped.ok && flipped.code], [false, 'ERR_REDUNDANCY_MISMATCH'])
  // The third node's report happens to carry the held report's bytes: nothing accepted has them.
  const third = await report(intake, run.id, three[single]!, units[single]!, honest)
  assert.deepEqual([third.ok, third.ok ? third.outcome : third.code], [true, 'accepted'])
  await changeRunStatus(db, run.id, 'stop')
})

test('without screening, another unit\'s held or accepted bytes are refused as a replay; a twin\'s identical bytes are not, and a unit\'s own retry is answered as before', async () => {
  const { engine, intake } = roundLoop()
  const run = await startedRun({ defences: { redundancy: 0.5 } })
  const { three, units, original, twin, single } = await pairedRound(engine, run.id, ['Lab N', 'Lab O', 'Lab P'])
  const trained = delta(run.paramCount, 21)
  // The twin reports first: held for its original.
  const held = await report(intake, run.id, three[twin]!, units[twin]!, trained)
  assert.deepEqual([held.ok, held.ok && held.outcome], [true, 'held'])
  // Another unit's node sends the held bytes as its own training: a replay, and its unit is spent.
  const copy = await report(intake, run.id, three[single]!, units[single]!, trained)
  assert.deepEqual([copy.ok, !copy.ok && copy.code], [false, 'ERR_REPLAY'])
  assert.equal((await db.selectFrom('assignments').select('status').where('id', '=', units[single]!.id).executeTakeFirstOrThrow()).status, 'refused')
  // The original trained the same unit the same way: the same bytes are its answer, not a copy.
  const pair = await report(intake, run.id, three[original]!, units[original]!, trained)
  assert.deepEqual([pair.ok, pair.ok && pair.outcome], [true, 'accepted'])
  const retry = await report(intake, run.id, three[original]!, units[original]!, trained)
  assert.deepEqual(retry, { ok: true, outcome: 'accepted', duplicate: true }, 'a unit\'s own retry')
  await changeRunStatus(db, run.id, 'stop')
})

test('a close that throws fails the run and ends its rounds before anyone else holds its lock: a report still on its way is refused as stale, never credited', async () => {
  const { engine, intake, cache } = roundLoop()
  const run = await startedRun({})
  const [x, y] = await freshNodes(['Lab I', 'Lab J'])
  live.clear()
  for (const n of [x!, y!]) live.add(n.peerId)
  await engine.tick()
  const [first] = await unitsOf(run.id, x!)
  const [second] = await unitsOf(run.id, y!)
  const sent = await report(intake, run.id, x!, first!, delta(run.paramCount, 11))
  assert.deepEqual([sent.ok, sent.ok && sent.outcome], [true, 'accepted'])
  // The base's file is gone, and the cache no longer holds it: the close throws where it takes the base.
  const base = (await db.selectFrom('runs').select('latest_checkpoint').where('id', '=', run.id).executeTakeFirstOrThrow()).latest_checkpoint!
  cache.forget(run.id)
  await blobs.delete(base)
  await db.updateTable('rounds').set({ deadline_at: new Date(Date.now() - 1000) }).where('run_id', '=', run.id).execute()
  // The second report waits on the run's lock while the close holds it.
  const [, late] = await Promise.all([engine.tick(), report(intake, run.id, y!, second!, delta(run.paramCount, 12))])
  const after = await db.selectFrom('runs').select(['status', 'failure_reason']).where('id', '=', run.id).executeTakeFirstOrThrow()
  assert.equal(after.status, 'failed')
  assert.match(after.failure_reason ?? '', /^coordinator error: /)
  assert.deepEqual((await db.selectFrom('rounds').select(['status', 'close_reason']).where('run_id', '=', run.id).execute()).map((r) => [r.status, r.close_reason]), [['abandoned', 'the run failed']])
  assert.equal(late.ok, false, 'the report arriving with the failure is refused')
  const credited = await db.selectFrom('ledger').select(['assignment_id', 'outcome']).where('run_id', '=', run.id).where('outcome', '=', 'accepted').execute()
  assert.deepEqual(credited.map((r) => r.assignment_id), [first!.id], 'only the report accepted before the close is credited')
  const secondRow = await db.selectFrom('assignments').select('status').where('id', '=', second!.id).executeTakeFirstOrThrow()
  assert.notEqual(secondRow.status, 'accepted')
})

test('a sparse broadcast\'s residual streams from blob to blob with the whole call\'s bits, one damaged is dropped, and each next round sums in the spent sum', async () => {
  const { engine, intake, cache } = roundLoop()
  const run = await startedRun({ broadcast: 'sparse', rounds: 5 })
  const pair = await freshNodes(['Lab K', 'Lab L'])
  live.clear()
  for (const n of pair) live.add(n.peerId)
  const runRow = async (): Promise<{ broadcast_residual: string | null }> => await db.selectFrom('runs').select('broadcast_residual').where('id', '=', run.id).executeTakeFirstOrThrow()
  // A residual of another size, then one holding a NaN: each dropped, its round's broadcast starting without it.
  const damaged = [null, null, writeBroadcastResidual(new Float32Array(run.paramCount - 1)), writeBroadcastResidual(new Float32Array(run.paramCount).fill(Number.NaN))]
  await engine.tick()
  for (const [i, damage] of damaged.entries()) {
    const number = i + 1
    const round = await db.selectFrom('rounds').select('id').where('run_id', '=', run.id).where('number', '=', number).executeTakeFirstOrThrow()
    const sum = (await cache.accumulator(run.id, round.id)).sum
    if (damage !== null) await db.updateTable('runs').set({ broadcast_residual: await blobs.put(damage) }).where('id', '=', run.id).execute()
    const carried = damage !== null || (await runRow()).broadcast_residual === null ? null : readBroadcastResidual(await blobs.get((await runRow()).broadcast_residual!), run.paramCount)
    // The round's mean as the intake folds it, in the order it does.
    const expected = new RoundAccumulator('expected', run.paramCount)
    for (const [j, n] of pair.entries()) {
      const d = delta(run.paramCount, 40 + 2 * number + j)
      const sent = await report(intake, run.id, n, (await unitsOf(run.id, n))[0]!, d)
      assert.deepEqual([sent.ok, sent.ok && sent.outcome], [true, 'accepted'])
      expected.foldEncoded('fp32', encodePseudoGradient('fp32', d), 128, undefined)
    }
    const whole = sparseBroadcast(expected.mean(), carried)
    // Its units all in and its nodes live: the tick closes it and opens the next round.
    await engine.tick()
    const closed = await db.selectFrom('rounds').select(['status', 'update_blob']).where('id', '=', round.id).executeTakeFirstOrThrow()
    assert.equal(closed.status, 'closed')
    assert.deepEqual(await blobs.get(closed.update_blob!), whole.encoded, `round ${number}: the payload`)
    assert.equal((await runRow()).broadcast_residual, sha256Hex(writeBroadcastResidual(whole.residual)), `round ${number}: the residual's blob`)
    const opened = await db.selectFrom('rounds').select('id').where('run_id', '=', run.id).where('number', '=', number + 1).executeTakeFirstOrThrow()
    const nextSum = (await cache.accumulator(run.id, opened.id)).sum
    assert.ok(nextSum === sum, `round ${number + 1} sums in round ${number}'s spent sum`)
    assert.ok(nextSum.every((x) => x === 0), 'zeroed')
  }
  await changeRunStatus(db, run.id, 'stop')
})

import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { openTestStore } from '../../../test/support/store.ts'
import type { Database } from '../db/schema.ts'
import { COMPUTE_SLACK_SECONDS, claimComputeTime, placeCompute } from './compute-time.ts'

const at = (s: number): Date => new Date(Date.UTC(2026, 11, 6) + s * 1000)

test('a claim is placed from the later of its hand-out and the node\'s earlier claims, and must end by now plus the slack', () => {
  // Alone: anything up to the unit's age (plus slack) fits, as before.
  assert.deepEqual(placeCompute({ handedOutAt: at(0), creditedUntil: null, placedFrom: null, placedSeconds: null, computeSeconds: 60, now: at(60) }), { ok: true, from: at(0), until: at(60) })
  assert.equal(placeCompute({ handedOutAt: at(0), creditedUntil: null, placedFrom: null, placedSeconds: null, computeSeconds: 60 + COMPUTE_SLACK_SECONDS, now: at(60) }).ok, true)
  const late = placeCompute({ handedOutAt: at(0), creditedUntil: null, placedFrom: null, placedSeconds: null, computeSeconds: 66, now: at(60) })
  assert.deepEqual(late, { ok: false, from: at(0), availableSeconds: 60, boundBy: 'hand-out' })
  // Two units handed out together (an overlapped run's look-ahead): the second starts where the first's claim ended.
  const second = placeCompute({ handedOutAt: at(0), creditedUntil: at(60), placedFrom: null, placedSeconds: null, computeSeconds: 60, now: at(60) })
  assert.deepEqual(second, { ok: false, from: at(60), availableSeconds: 0, boundBy: 'earlier claims' })
  // An honest node trains it after the first: by the time it reports, its time has passed.
  assert.deepEqual(placeCompute({ handedOutAt: at(0), creditedUntil: at(60), placedFrom: null, placedSeconds: null, computeSeconds: 55, now: at(118) }), { ok: true, from: at(60), until: at(115) })
  // Time before a unit was handed out is not claimable, whatever the node did before.
  assert.equal(placeCompute({ handedOutAt: at(100), creditedUntil: at(10), placedFrom: null, placedSeconds: null, computeSeconds: 30, now: at(110) }).ok, false)
  // A retry keeps its unit's place.
  assert.deepEqual(placeCompute({ handedOutAt: at(0), creditedUntil: at(60), placedFrom: at(0), placedSeconds: 60, computeSeconds: 60, now: at(61) }), { ok: true, from: at(0), until: at(60) })
  // Nonsense is refused.
  for (const computeSeconds of [-1, Number.NaN, Infinity, 1e308]) assert.equal(placeCompute({ handedOutAt: at(0), creditedUntil: null, placedFrom: null, placedSeconds: null, computeSeconds, now: at(60) }).ok, false)
})

test('an honest node\'s claims, packed as early as they can be, never pass its real training', () => {
  // One unit after another, some handed out long before they are trained (look-ahead), some
  // handed out while the node is busy; each claims exactly its inner loop and reports right
  // after it. Every claim fits, without the slack.
  let seed = 11
  const random = (): number => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 2 ** 32 }
  let clock = 0
  let creditedUntil: Date | null = null
  for (let i = 0; i < 500; i++) {
    const handedOut = clock - random() * 30
    clock += random() * 5 // download, decode
    const seconds = random() * 40
    clock += seconds
    const placed = placeCompute({ handedOutAt: at(handedOut), creditedUntil, placedFrom: null, placedSeconds: null, computeSeconds: seconds, now: at(clock), slackSeconds: 0.002 })
    assert.ok(placed.ok, `unit ${i}`)
    assert.ok(placed.until.getTime() <= at(clock).getTime() + 2)
    creditedUntil = placed.until
    clock += random() * 3 // encode, upload
  }
})

let store: Awaited<ReturnType<typeof openTestStore>>
let db: Kysely<Database>
let nodeId: string
let roundId: string
let runId: string

beforeAll(async () => {
  store = await openTestStore('compute-time')
  db = store.db
  const orgId = (await db.insertInto('organizations').values({ name: 'Lab' }).returning('id').executeTakeFirstOrThrow()).id
  runId = (await db.insertInto('runs').values({ name: 'r', spec: '{}', failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
  roundId = (await db.insertInto('rounds').values({ run_id: runId, number: 1, status: 'open', base_checkpoint: 'b'.repeat(64), deadline_at: new Date(Date.now() + 3_600_000) }).returning('id').executeTakeFirstOrThrow()).id
  nodeId = (await db.insertInto('nodes').values({
    peer_id: 'peer', organization_id: orgId, name: 'n', agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date(),
    hardware: JSON.stringify({ hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'c', cpuCores: 1, memoryBytes: 1, gpus: [] })
  }).returning('id').executeTakeFirstOrThrow()).id
}, 60_000)
afterAll(async () => { await store?.close() })

/** A unit of the node's, handed out `secondsAgo` ago by the database's clock. */
async function unit (secondsAgo: number): Promise<string> {
  return (await db.insertInto('assignments').values({ run_id: runId, round_id: roundId, node_id: nodeId, ranges: JSON.stringify([]), tokens: 1, status: 'assigned', created_at: new Date(Date.now() - secondsAgo * 1000) })
    .returning('id').executeTakeFirstOrThrow()).id
}

const creditedUntil = async (): Promise<Date | null> => (await db.selectFrom('nodes').select('credited_until').where('id', '=', nodeId).executeTakeFirstOrThrow()).credited_until

test('units held at once share the node\'s time: the second claim of the same seconds is refused, a retry is judged as before, and sent together only one fits', async () => {
  // Two units handed out together 20 s ago; the node claims all 20 s for the first.
  const first = await unit(20)
  const second = await unit(20)
  const placed = await claimComputeTime(db, first, 20)
  assert.equal(placed.ok, true)
  const until = await creditedUntil()
  assert.ok(until !== null && Math.abs(until.getTime() - (Date.now() - 0)) < 2000, `${until?.toISOString()}`)
  // The same 20 s again for the other unit: refused, and nothing moves.
  const again = await claimComputeTime(db, second, 20)
  assert.equal(again.ok, false)
  assert.equal(!again.ok && again.boundBy, 'earlier claims')
  assert.deepEqual(await creditedUntil(), until)
  // The first report's upload failed and the agent sends it again: the same place, the same verdict.
  assert.deepEqual(await claimComputeTime(db, first, 20), placed)
  assert.deepEqual(await creditedUntil(), until)
  // What is left (within the slack) the second unit may still claim; then the node's time is spent.
  assert.equal((await claimComputeTime(db, second, 1)).ok, true)
  const row = await db.selectFrom('assignments').select('compute_from').where('id', '=', second).executeTakeFirstOrThrow()
  assert.deepEqual(row.compute_from, until)

  // Two more units, 30 s old, each claiming 25 s, sent at the same moment: only one fits.
  await db.updateTable('nodes').set({ credited_until: null }).where('id', '=', nodeId).execute()
  const [a, b] = [await unit(30), await unit(30)]
  const both = await Promise.all([claimComputeTime(db, a, 25), claimComputeTime(db, b, 25)])
  assert.deepEqual(both.map((p) => p.ok).sort(), [false, true])
})

test('a unit placed early with a moment\'s claim cannot come back for the time another unit claimed after it', async () => {
  await db.updateTable('nodes').set({ credited_until: null }).where('id', '=', nodeId).execute()
  const [a, b] = [await unit(60), await unit(60)]
  // A claims a moment (its upload then dropped), B claims the minute after it.
  assert.equal((await claimComputeTime(db, a, 0.001)).ok, true)
  assert.equal((await claimComputeTime(db, b, 59.9)).ok, true)
  // A re-sent claiming the whole minute is placed afresh, after B: it does not fit.
  const back = await claimComputeTime(db, a, 60)
  assert.equal(back.ok, false)
  assert.equal(!back.ok && back.boundBy, 'earlier claims')
  // The same moment again (an honest retry) keeps its place.
  assert.equal((await claimComputeTime(db, a, 0.001)).ok, true)
})

import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { openTestStore } from '../../../test/support/store.ts'
import type { AssignmentStatus, Database } from '../db/schema.ts'
import { MAX_BACKOFF_ROUNDS, backedOffNodes, backoffRounds } from './node-backoff.ts'

let store: Awaited<ReturnType<typeof openTestStore>>
let db: Kysely<Database>
let orgId: string
let userId: string

beforeAll(async () => {
  store = await openTestStore('node-backoff')
  db = store.db
  orgId = (await db.insertInto('organizations').values({ name: 'Lab A' }).returning('id').executeTakeFirstOrThrow()).id
  userId = (await db.insertInto('users').values({ email: 'o@x.test', display_name: 'O', password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
}, 60_000)
afterAll(async () => { await store?.close() })

const t0 = Date.now() - 3_600_000
const at = (s: number): Date => new Date(t0 + s * 1000)

async function run (): Promise<string> {
  return (await db.insertInto('runs').values({ name: 'r', spec: '{}', failure_reason: null, created_by: userId, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
}

let rounds = 0
/** A round of `runId` opened at `opened` s, its deadline at `deadline` s. */
async function round (runId: string, opened: number, deadline = opened + 60): Promise<string> {
  return (await db.insertInto('rounds').values({ run_id: runId, number: ++rounds, status: 'closed', base_checkpoint: 'c'.repeat(64), opened_at: at(opened), deadline_at: at(deadline) }).returning('id').executeTakeFirstOrThrow()).id
}

let nodes = 0
async function node (): Promise<string> {
  const peer = `peer-${++nodes}`
  return (await db.insertInto('nodes').values({ peer_id: peer, organization_id: orgId, name: peer, hardware: '{}', agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date() }).returning('id').executeTakeFirstOrThrow()).id
}

async function unit (runId: string, roundId: string, nodeId: string, status: AssignmentStatus, resolved: number): Promise<void> {
  await db.insertInto('assignments').values({ run_id: runId, round_id: roundId, node_id: nodeId, ranges: '[]', tokens: 1, status, resolved_at: at(resolved) }).execute()
}

test('each expired unit in a row doubles the rounds a node sits out, up to a limit', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 20].map(backoffRounds), [0, 1, 2, 4, 8, 16, 32, 32])
  assert.equal(backoffRounds(100), MAX_BACKOFF_ROUNDS)
})

test('a node whose latest units expired at their deadline sits out the next rounds of every run; one that reports, or whose unit ended early, does not', async () => {
  const a = await run()
  const b = await run()
  const r1 = await round(a, 0)
  const silent = await node()
  const worker = await node()
  const recovered = await node()
  const revoked = await node()
  const fresh = await node()
  await unit(a, r1, worker, 'accepted', 10)
  // Expired at the deadline: it was given the round's whole time and sent nothing.
  await unit(a, r1, silent, 'expired', 61)
  await unit(a, r1, recovered, 'expired', 61)
  await unit(a, r1, revoked, 'expired', 30)
  const r2 = await round(a, 62)
  // Reported its next unit (or declined it: a refusal): the streak is over.
  await unit(a, r2, recovered, 'refused', 70)
  const all = [silent, worker, recovered, revoked, fresh]
  // One round of run a opened after the expiry: the first expiry's one round is sat out.
  assert.deepEqual([...await backedOffNodes(db, a, all)], [])
  // Run b opened no round since: the silent node sits its next one out.
  assert.deepEqual([...await backedOffNodes(db, b, all)], [[silent, 1]])

  // Three expiries in a row (in two runs): four rounds out.
  const rb1 = await round(b, 100)
  await unit(b, rb1, silent, 'expired', 161)
  const r3 = await round(a, 170)
  await unit(a, r3, silent, 'expired', 231)
  for (let i = 0; i < 3; i++) await round(a, 240 + i)
  assert.deepEqual([...await backedOffNodes(db, a, all)], [[silent, 3]])
  await round(a, 250)
  assert.deepEqual([...await backedOffNodes(db, a, all)], [])
  assert.deepEqual([...await backedOffNodes(db, a, [])], [])
})

test('a unit declined or refused in the second half of its round counts as an expiry; one declined at once does not', async () => {
  const a = await run()
  const r1 = await round(a, 1000)
  const shirker = await node()
  const honest = await node()
  // Took the unit and declined it a second before the deadline: the round waited as for silence.
  await unit(a, r1, shirker, 'refused', 1059)
  // Declined at once, as an agent does with a unit it cannot train.
  await unit(a, r1, honest, 'refused', 1002)
  assert.deepEqual([...await backedOffNodes(db, a, [shirker, honest])], [[shirker, 1]])
  const r2 = await round(a, 1061)
  await unit(a, r2, shirker, 'refused', 1119)
  await round(a, 1121)
  // Two late ones in a row: two rounds out, and one opened since.
  assert.deepEqual([...await backedOffNodes(db, a, [shirker, honest])], [[shirker, 2]])
})

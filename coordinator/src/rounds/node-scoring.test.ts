import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { openTestStore } from '../../../test/support/store.ts'
import type { Database } from '../db/schema.ts'
import type { Presence } from '../p2p/presence.ts'
import { NodeScoring } from './node-scoring.ts'

let store: Awaited<ReturnType<typeof openTestStore>>
let db: Kysely<Database>
let runId: string
let roundId: string
let nodes: Array<{ id: string, peer_id: string }>
let orgs: string[]
const online = new Set<string>()

beforeAll(async () => {
  store = await openTestStore('node-scoring')
  db = store.db
  // One lab a node: scorers must come from two labs other than the producer's.
  orgs = []
  for (const name of ['Lab A', 'Lab B', 'Lab C', 'Lab D']) orgs.push((await db.insertInto('organizations').values({ name }).returning('id').executeTakeFirstOrThrow()).id)
  runId = (await db.insertInto('runs').values({ name: 'r', status: 'running', spec: JSON.stringify({ modelConfig: {}, codec: 'fp32' }), failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
  for (const org of orgs) await db.insertInto('organization_served_runs').values({ organization_id: org, run_id: runId }).execute()
  roundId = (await db.insertInto('rounds').values({ run_id: runId, number: 1, status: 'open', base_checkpoint: 'a'.repeat(64), deadline_at: new Date(Date.now() + 60_000) }).returning('id').executeTakeFirstOrThrow()).id
  nodes = []
  for (let i = 0; i < 4; i++) {
    nodes.push(await db.insertInto('nodes').values({ peer_id: `peer-${i}`, organization_id: orgs[i]!, name: `n${i}`, hardware: '{}', agent_version: 't', first_seen_at: new Date(Date.now() + i), last_seen_at: new Date() }).returning(['id', 'peer_id']).executeTakeFirstOrThrow())
    online.add(`peer-${i}`)
  }
}, 60_000)
afterAll(async () => { await store?.close() })

const presence = { isLive: (peerId: string) => online.has(peerId) } as unknown as Presence
const scoring = (): NodeScoring => new NodeScoring({ db, presence, windows: async () => ({ sha256: 'c'.repeat(64), batchSize: 1, seqLen: 2 }) })

async function report (producer: number): Promise<string> {
  return (await db.insertInto('assignments').values({ run_id: runId, round_id: roundId, node_id: nodes[producer]!.id, ranges: '[]', tokens: 10, status: 'held', report_blob: 'b'.repeat(64) }).returning('id').executeTakeFirstOrThrow()).id
}

test('two online scorers other than the producer, fewest open tasks first; offline or quarantined nodes never score', async () => {
  const s = scoring()
  online.delete('peer-3')
  await db.updateTable('nodes').set({ quarantined_at: new Date(), quarantine_reason: 'test' }).where('id', '=', nodes[2]!.id).execute()
  const a = await report(0)
  assert.equal(await s.open(runId, roundId, a, nodes[0]!.id), 0, 'only node 1 is online, unquarantined and not the producer: one scorer is not enough')
  assert.equal(await s.outstanding(roundId), 0)
  await db.updateTable('nodes').set({ quarantined_at: null, quarantine_reason: null }).where('id', '=', nodes[2]!.id).execute()
  online.add('peer-3')
  const b = await report(1)
  assert.equal(await s.open(runId, roundId, b, nodes[1]!.id), 2)
  // Node 1 already scores a; nodes 0, 2 and 3 have nothing open, and 0 and 2 came first.
  const tasks = await db.selectFrom('scoring_tasks').select(['node_id']).where('assignment_id', '=', b).execute()
  assert.deepEqual(tasks.map((t) => t.node_id).sort(), [nodes[0]!.id, nodes[2]!.id].sort())
  assert.equal(await s.taskFor(nodes[3]!.id), null, 'node 3 was not asked to score anything')
  const task = await s.taskFor(nodes[0]!.id)
  assert.deepEqual({ report: task?.report, round: task?.round, windows: task?.windows, batchSize: task?.batchSize }, { report: 'b'.repeat(64), round: 1, windows: 'c'.repeat(64), batchSize: 1 })
  assert.equal(await s.outstanding(roundId), 2)
})

test('answers: only the own open task counts; the last one makes the report ready; agreeing scorers are averaged, disagreeing ones void the scores', async () => {
  const s = scoring()
  const a = await report(0)
  assert.equal(await s.open(runId, roundId, a, nodes[0]!.id), 2)
  const tasks = await db.selectFrom('scoring_tasks').select(['id', 'node_id']).where('assignment_id', '=', a).orderBy('node_id').execute()
  const [t1, t2] = tasks
  const stranger = nodes.find((n) => !tasks.some((t) => t.node_id === n.id))!
  assert.equal(await s.record(stranger.id, { taskId: t1!.id, base: 1, after: 0, reversed: 2 }), null, 'a task that is not yours is ignored')
  assert.equal(await s.record(t1!.node_id, { taskId: t1!.id, base: 3, after: 2.9, reversed: 3.1 }), null, 'one scorer still out')
  assert.deepEqual(await s.losses(a), { heldOut: undefined, scorers: 1, disagreement: null }, 'one answer alone scores nothing')
  assert.equal(await s.record(t1!.node_id, { taskId: t1!.id, base: 0, after: 0, reversed: 0 }), null, 'a second answer changes nothing')
  assert.deepEqual(await s.record(t2!.node_id, { taskId: t2!.id, base: 3, after: 2.9002, reversed: null }), { runId, assignmentId: a })
  const disagree = await s.losses(a)
  assert.match(disagree.disagreement ?? '', /^scorers peer-\d and peer-\d disagree by an infinite loss$/)
  assert.equal(disagree.heldOut, undefined)
  await db.updateTable('scoring_tasks').set({ reversed_loss: 3.1001 }).where('id', '=', t2!.id).execute()
  const agree = await s.losses(a)
  assert.equal(agree.disagreement, null)
  assert.equal(agree.scorers, 2)
  assert.ok(Math.abs(agree.heldOut!.after - 2.9001) < 1e-9 && agree.heldOut!.base === 3)
  await s.expire(roundId)
  assert.equal(await s.outstanding(roundId), 0)
})

test('the two scorers come from two different labs, neither the producer\'s: lab-mates never score each other, nor both one report', async () => {
  const s = scoring()
  const saved = new Set(online)
  online.clear()
  const node = async (peer: string, org: number): Promise<{ id: string, peer_id: string }> => {
    const n = await db.insertInto('nodes').values({ peer_id: peer, organization_id: orgs[org]!, name: peer, hardware: '{}', agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date() }).returning(['id', 'peer_id']).executeTakeFirstOrThrow()
    online.add(peer)
    return n
  }
  try {
    const producer = await node('lab-a-1', 0)
    await node('lab-a-2', 0)
    await node('lab-b-1', 1)
    await node('lab-b-2', 1)
    const held = (await db.insertInto('assignments').values({ run_id: runId, round_id: roundId, node_id: producer.id, ranges: '[]', tokens: 10, status: 'held', report_blob: 'e'.repeat(64) }).returning('id').executeTakeFirstOrThrow()).id
    assert.equal(await s.open(runId, roundId, held, producer.id), 0, 'a lab-mate of the producer and two nodes of one other lab are not two independent scorers')
    const c = await node('lab-c-1', 2)
    assert.equal(await s.open(runId, roundId, held, producer.id), 2)
    const scorers = await db.selectFrom('scoring_tasks').innerJoin('nodes', 'nodes.id', 'scoring_tasks.node_id').select(['nodes.peer_id', 'nodes.organization_id']).where('assignment_id', '=', held).execute()
    assert.deepEqual(scorers.map((r) => r.organization_id).sort(), [orgs[1]!, orgs[2]!].sort())
    assert.ok(scorers.some((r) => r.peer_id === c.peer_id))
  } finally {
    online.clear()
    for (const p of saved) online.add(p)
  }
})

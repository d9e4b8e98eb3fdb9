import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { openTestStore } from '../../../test/support/store.ts'
import type { Database } from '../db/schema.ts'
import type { Presence } from '../p2p/presence.ts'
import { NodeScoring } from './node-scoring.ts'
import { countParams, presetConfig } from '@barnraise/trainer'
import type { ExecutorKind } from '@barnraise/protocol'
import { torchScoringBytes } from '../runs/run-plan.ts'
import type { StoredRunSpec } from '../runs/runs.ts'

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
  // The demo's model: within the TypeScript limits, so any node may score it.
  runId = await run(specOf('small', 64, 4))
  for (const org of orgs) await db.insertInto('organization_served_runs').values({ organization_id: org, run_id: runId }).execute()
  roundId = (await db.insertInto('rounds').values({ run_id: runId, number: 1, status: 'open', base_checkpoint: 'a'.repeat(64), deadline_at: new Date(Date.now() + 60_000) }).returning('id').executeTakeFirstOrThrow()).id
  nodes = []
  for (let i = 0; i < 4; i++) {
    nodes.push(await db.insertInto('nodes').values({ peer_id: `peer-${i}`, organization_id: orgs[i]!, name: `n${i}`, hardware: '{}', agent_version: 't', first_seen_at: new Date(Date.now() + i), last_seen_at: new Date() }).returning(['id', 'peer_id']).executeTakeFirstOrThrow())
    online.add(`peer-${i}`)
  }
}, 60_000)
afterAll(async () => { await store?.close() })

/** A run's stored spec, as far as scoring reads it: the model and the scoring windows' shape. */
function specOf (preset: string, seqLen: number, batchSize: number): Record<string, unknown> {
  const modelConfig = presetConfig(preset)
  return { modelConfig, paramCount: countParams(modelConfig), codec: 'fp32', evalBatches: 4, minNodes: 1, recipe: { innerSteps: 10, batchSize, seqLen } }
}

async function run (spec: Record<string, unknown>): Promise<string> {
  return (await db.insertInto('runs').values({ name: `r-${Math.random()}`, status: 'running', spec: JSON.stringify(spec), failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
}

/** The executor each peer's work requests named (Presence.executorOf). */
const executors = new Map<string, ExecutorKind>()
const presence = { isLive: (peerId: string) => online.has(peerId), livePeers: () => [...online], executorOf: (peerId: string) => executors.get(peerId) } as unknown as Presence
const scoring = (): NodeScoring => new NodeScoring({ db, presence, windows: async () => ({ sha256: 'c'.repeat(64), batchSize: 1, seqLen: 2 }) })

/** Takes every node offline for one test, which brings its own online; the returned function puts the file's nodes back. */
function onlyNodesAddedNowOnline (): () => void {
  const saved = new Set(online)
  online.clear()
  return () => { online.clear(); for (const p of saved) online.add(p) }
}

/** A node of lab `org`, online now, with `hardware` as its stored profile. */
async function onlineNode (peer: string, org: number, hardware = '{}'): Promise<{ id: string, peer_id: string }> {
  const n = await db.insertInto('nodes').values({ peer_id: peer, organization_id: orgs[org]!, name: peer, hardware, agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date() }).returning(['id', 'peer_id']).executeTakeFirstOrThrow()
  online.add(peer)
  return n
}

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
  const restoreOnline = onlyNodesAddedNowOnline()
  try {
    const producer = await onlineNode('lab-a-1', 0)
    await onlineNode('lab-a-2', 0)
    await onlineNode('lab-b-1', 1)
    await onlineNode('lab-b-2', 1)
    const held = (await db.insertInto('assignments').values({ run_id: runId, round_id: roundId, node_id: producer.id, ranges: '[]', tokens: 10, status: 'held', report_blob: 'e'.repeat(64) }).returning('id').executeTakeFirstOrThrow()).id
    assert.equal(await s.open(runId, roundId, held, producer.id), 0, 'a lab-mate of the producer and two nodes of one other lab are not two independent scorers')
    const c = await onlineNode('lab-c-1', 2)
    assert.equal(await s.open(runId, roundId, held, producer.id), 2)
    const scorers = await db.selectFrom('scoring_tasks').innerJoin('nodes', 'nodes.id', 'scoring_tasks.node_id').select(['nodes.peer_id', 'nodes.organization_id']).where('assignment_id', '=', held).execute()
    assert.deepEqual(scorers.map((r) => r.organization_id).sort(), [orgs[1]!, orgs[2]!].sort())
    assert.ok(scorers.some((r) => r.peer_id === c.peer_id))
  } finally {
    restoreOnline()
  }
})

test('a task past the TypeScript limits goes only to nodes naming a torch executor whose claimed memory holds it, GPUs first; fewer than two such nodes score nothing', async () => {
  const s = scoring()
  const restoreOnline = onlyNodesAddedNowOnline()
  // 125M parameters at 2,048 tokens: the TypeScript forward pass would take hours.
  const spec = specOf('125m', 2048, 8)
  const bigRun = await run(spec)
  for (const org of orgs) await db.insertInto('organization_served_runs').values({ organization_id: org, run_id: bigRun }).execute()
  const bigRound = (await db.insertInto('rounds').values({ run_id: bigRun, number: 1, status: 'open', base_checkpoint: 'a'.repeat(64), deadline_at: new Date(Date.now() + 60_000) }).returning('id').executeTakeFirstOrThrow()).id
  const need = torchScoringBytes(spec as unknown as StoredRunSpec, 'torch-cuda')
  const gpuMiB = (bytes: number): number => Math.ceil(bytes / 2 ** 20)
  const node = async (peer: string, org: number, executor: ExecutorKind | undefined, hardware: Record<string, unknown>): Promise<{ id: string, peer_id: string }> => {
    const n = await onlineNode(peer, org, JSON.stringify({ hostname: peer, platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 8, memoryBytes: 8 * 2 ** 30, gpus: [], ...hardware }))
    if (executor !== undefined) executors.set(peer, executor)
    return n
  }
  const held = async (producer: { id: string }): Promise<string> => (await db.insertInto('assignments').values({ run_id: bigRun, round_id: bigRound, node_id: producer.id, ranges: '[]', tokens: 10, status: 'held', report_blob: 'f'.repeat(64) }).returning('id').executeTakeFirstOrThrow()).id
  const scorersOf = async (assignment: string): Promise<string[]> => (await db.selectFrom('scoring_tasks').innerJoin('nodes', 'nodes.id', 'scoring_tasks.node_id').select('nodes.peer_id').where('assignment_id', '=', assignment).execute()).map((r) => r.peer_id).sort()
  try {
    const producer = await node('big-producer', 0, 'torch-cuda', { gpus: [{ name: 'H100', memoryMiB: 81_559 }] })
    // Lab B: a TypeScript node on a large machine, an older agent naming nothing, a GPU too small for the task.
    await node('big-ts', 1, 'typescript', { memoryBytes: 512 * 2 ** 30, gpus: [{ name: 'H100', memoryMiB: 81_559 }] })
    await node('big-old', 1, undefined, { gpus: [{ name: 'H100', memoryMiB: 81_559 }] })
    await node('big-small-gpu', 1, 'torch-cuda', { gpus: [{ name: 'T4', memoryMiB: gpuMiB(need) }] })
    // Lab C: torch on a CPU with room for it.
    await node('big-cpu', 2, 'torch-cpu', { memoryBytes: 64 * 2 ** 30 })
    const a = await held(producer)
    assert.equal(await s.open(bigRun, bigRound, a, producer.id), 0, 'lab B has no node that can score it: one lab alone is not two scorers')
    assert.deepEqual(await scorersOf(a), [])
    // A GPU with twice what the task needs (the agent's share) in lab B, and another in lab D.
    await node('big-gpu-b', 1, 'torch-cuda', { gpus: [{ name: 'L40S', memoryMiB: gpuMiB(2 * need) }] })
    await node('big-gpu-d', 3, 'torch-cuda', { gpus: [{ name: 'A100', memoryMiB: 40_960 }] })
    assert.equal(await s.open(bigRun, bigRound, a, producer.id), 2)
    // Labs B and D's GPUs before lab C's CPU, all with no open task; never a node that cannot.
    assert.deepEqual(await scorersOf(a), ['big-gpu-b', 'big-gpu-d'])
    // With both GPUs busy, the CPU that can score it comes first.
    const b = await held(producer)
    assert.equal(await s.open(bigRun, bigRound, b, producer.id), 2)
    const second = await scorersOf(b)
    assert.ok(second.includes('big-cpu') && !second.some((p) => ['big-ts', 'big-old', 'big-small-gpu'].includes(p)), JSON.stringify(second))
    // The same nodes take the demo run's tasks, whatever executor they name.
    const small = await held(producer)
    await db.updateTable('assignments').set({ run_id: runId, round_id: roundId }).where('id', '=', small).execute()
    online.delete('big-gpu-b')
    online.delete('big-gpu-d')
    online.delete('big-cpu')
    assert.equal(await s.open(runId, roundId, small, producer.id), 0, 'only lab B is online: one lab')
    online.add('big-cpu')
    assert.equal(await s.open(runId, roundId, small, producer.id), 2)
    assert.equal((await scorersOf(small)).filter((p) => ['big-ts', 'big-old', 'big-small-gpu'].includes(p)).length, 1, 'a TypeScript-sized task goes to any node of lab B')
  } finally {
    await s.expire(bigRound)
    restoreOnline()
  }
})

test('a round is covered only when every producing lab has scorers in two other labs online now', async () => {
  const s = scoring()
  const restoreOnline = onlyNodesAddedNowOnline()
  try {
    for (const [peer, org] of [['cover-a', 0], ['cover-a-2', 0], ['cover-b', 1]] as const) await onlineNode(peer, org)
    assert.equal(await s.covers(runId, []), true, 'a round with no units needs no scorers')
    assert.equal(await s.covers(runId, [orgs[2]!]), true, 'lab C\'s reports: labs A and B score them')
    assert.equal(await s.covers(runId, [orgs[0]!]), false, 'lab A\'s reports: only lab B is another lab, however many nodes lab A has')
    assert.equal(await s.covers(runId, [orgs[2]!, orgs[1]!]), false, 'one uncovered lab is enough')
    online.add('peer-2')
    assert.equal(await s.covers(runId, [orgs[0]!, orgs[1]!, orgs[2]!, orgs[0]!]), true, 'three labs online: each has the other two')
    await db.updateTable('nodes').set({ quarantined_at: new Date(), quarantine_reason: 'test' }).where('id', '=', nodes[2]!.id).execute()
    assert.equal(await s.covers(runId, [orgs[0]!]), false, 'a quarantined node scores nothing')
  } finally {
    await db.updateTable('nodes').set({ quarantined_at: null, quarantine_reason: null }).where('id', '=', nodes[2]!.id).execute()
    restoreOnline()
  }
})

test('a scorer whose last two tasks expired unanswered is handed none until it answers one or the strikes age out', async () => {
  const s = scoring()
  const restoreOnline = onlyNodesAddedNowOnline()
  const task = async (scorer: { id: string }, status: 'done' | 'expired', minutesAgo: number): Promise<void> => {
    const held = await report(0)
    await db.insertInto('scoring_tasks').values({ run_id: runId, round_id: roundId, assignment_id: held, node_id: scorer.id, windows_blob: 'c'.repeat(64), status, resolved_at: new Date(Date.now() - minutesAgo * 60_000) }).execute()
  }
  const scorersOf = async (producer: { id: string }): Promise<string[]> => {
    const held = (await db.insertInto('assignments').values({ run_id: runId, round_id: roundId, node_id: producer.id, ranges: '[]', tokens: 10, status: 'held', report_blob: 'd'.repeat(64) }).returning('id').executeTakeFirstOrThrow()).id
    await s.open(runId, roundId, held, producer.id)
    return (await db.selectFrom('scoring_tasks').innerJoin('nodes', 'nodes.id', 'scoring_tasks.node_id').select('nodes.peer_id').where('assignment_id', '=', held).execute()).map((r) => r.peer_id).sort()
  }
  try {
    const producer = await onlineNode('silent-producer', 0)
    const silent = await onlineNode('silent-b', 1)
    await onlineNode('silent-c', 2)
    await onlineNode('silent-d', 3)
    // One expired task is a slow day; a second in a row, with no answer since, is a pattern.
    await task(silent, 'done', 20)
    await task(silent, 'expired', 10)
    await task(silent, 'expired', 10)
    assert.ok((await scorersOf(producer)).includes('silent-b'), 'two tasks of one round expired at its deadline: one bad round')
    // Its task from scorersOf expires in the next round.
    const next = (await db.insertInto('rounds').values({ run_id: runId, number: 2, status: 'closed', base_checkpoint: 'a'.repeat(64), deadline_at: new Date() }).returning('id').executeTakeFirstOrThrow()).id
    await db.updateTable('scoring_tasks').set({ status: 'expired', round_id: next, resolved_at: new Date(Date.now() - 60_000) }).where('node_id', '=', silent.id).where('status', '=', 'assigned').execute()
    assert.deepEqual(await scorersOf(producer), ['silent-c', 'silent-d'], 'two rounds in a row: passed over')
    online.delete('silent-d')
    assert.equal(await s.covers(runId, [orgs[0]!]), false, 'with lab D offline, lab A\'s reports have only lab C: lab B\'s silent scorer does not count')
    online.add('silent-d')
    // An answer (a refusal counts) puts it back.
    await task(silent, 'done', 0)
    assert.ok((await scorersOf(producer)).includes('silent-b'), 'it answered since')
    // Strikes older than the window do not count.
    await db.deleteFrom('scoring_tasks').where('node_id', '=', silent.id).where('status', '=', 'done').execute()
    await db.updateTable('scoring_tasks').set({ resolved_at: new Date(Date.now() - 31 * 60_000) }).where('node_id', '=', silent.id).execute()
    assert.ok((await scorersOf(producer)).includes('silent-b'), 'the strikes aged out')
  } finally {
    await db.updateTable('scoring_tasks').set({ status: 'expired', resolved_at: new Date(Date.now() - 60 * 60_000) }).where('status', '=', 'assigned').execute()
    restoreOnline()
  }
})

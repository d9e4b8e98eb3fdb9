import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import pg from 'pg'
import { canonicalReportMetadata, encodePseudoGradient, parseLedgerJson, verifyLedger } from '@barnraise/protocol'
import type { HardwareProfile, ReportMetadata, ReportResponse, WorkUnit } from '@barnraise/protocol'
import { CoordinatorClient, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningCoordinator } from './support/cluster.ts'
import { runCli } from './support/processes.ts'
import { createRunViaCli, tinyRunSpec, waitForRun } from './support/runs.ts'
import { createTestDatabase } from './support/postgres.ts'

// What a node's claims can earn in device time (coordinator/src/ledger/device-credit.ts and
// compute-time.ts), against a real coordinator: scripted nodes that speak the wire protocol with
// the agent's own client and sign whatever they claim.

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const H100 = { name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81_559 }

interface ScriptedNode { client: CoordinatorClient, key: PrivateKey, peerId: string, stop: () => Promise<void> }

async function scriptedNode (coordinator: RunningCoordinator, org: string, hardware: Partial<HardwareProfile>): Promise<ScriptedNode> {
  const key = await generateKeyPair('Ed25519')
  const host = await createAgentHost(key)
  const client = new CoordinatorClient(host, parseCoordinatorAddress(coordinator.multiaddr))
  const profile: HardwareProfile = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'Xeon', cpuCores: 2, memoryBytes: 2 ** 33, gpus: [], ...hardware }
  await client.enroll({ type: 'enroll', agentVersion: '0', hardware: profile, token: await coordinator.createToken(org) })
  return { client, key, peerId: host.peerId.toString(), stop: async () => { await host.stop() } }
}

/** The node's next unit of `runId` in a round after `after`, or with `lookAhead` the unit after that one. */
async function nextUnit (n: ScriptedNode, runId: string, after: number, lookAhead?: string): Promise<WorkUnit> {
  for (let i = 0; i < 400; i++) {
    await n.client.heartbeat({ type: 'heartbeat', status: 'idle' })
    const reply = await n.client.requestWork(undefined, undefined, lookAhead)
    if (reply.kind === 'unit' && reply.unit.runId === runId && reply.unit.round > after) return reply.unit
    await sleep(250)
  }
  throw new Error('no work unit came')
}

/** Signs and sends an fp32 report for `unit`; `patch` is what the node claims (and signs). */
async function report (n: ScriptedNode, unit: WorkUnit, values: Float32Array, patch: Partial<ReportMetadata>): Promise<ReportResponse> {
  const payload = encodePseudoGradient('fp32', values)
  const metadata: ReportMetadata = {
    runId: unit.runId, round: unit.round, assignmentId: unit.assignmentId, peerId: n.peerId, tokens: 100, computeSeconds: 1,
    lossCurve: [5], codec: 'fp32', payloadBytes: payload.byteLength, payloadSha256: sha(payload), ...patch
  }
  for (const k of Object.keys(metadata) as Array<keyof ReportMetadata>) if (metadata[k] === undefined) delete metadata[k]
  const signature = Buffer.from(await n.key.sign(canonicalReportMetadata(metadata))).toString('base64')
  return await n.client.sendReport({ type: 'report', metadata, signature }, payload)
}

/** A small delta of the model's size, different for each seed. */
function delta (size: number, seed: number): Float32Array {
  let s = seed >>> 0
  const out = new Float32Array(size)
  for (let i = 0; i < size; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = ((s / 2 ** 32) - 0.5) * 1e-4 }
  return out
}

const verdictOf = (r: ReportResponse): string => r.ok ? r.outcome : r.code

async function contributions (coordinator: RunningCoordinator, runId: string, peerId: string): Promise<{ gpuHours: number, cpuCoreHours: number }> {
  const res = await fetch(new URL(`trpc/ledger.contributions?input=${encodeURIComponent(JSON.stringify({ runId }))}`, coordinator.url))
  const body = await res.json() as { result: { data: { nodes: Array<{ peerId: string, gpuHours: number, cpuCoreHours: number }> } } }
  const mine = body.result.data.nodes.find((n) => n.peerId === peerId)!
  return { gpuHours: mine.gpuHours, cpuCoreHours: mine.cpuCoreHours }
}

test('GPU-hours need GPU work: a node listing an H100 earns none for a token a few seconds, signed torch-cuda or naming no executor; what it shows at GPU speed counts', async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url }
  const coordinator = await startCoordinator({ env })
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  let node: ScriptedNode | undefined
  try {
    node = await scriptedNode(coordinator, 'Claims Lab', { gpus: [H100] })
    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ codec: 'fp32', minNodes: 1, maxNodes: 1, rounds: 4 }), env)
    const { paramCount } = (await db.query<{ spec: { paramCount: number } }>('select spec from runs where id = $1', [runId])).rows[0]!.spec

    // A token in 2 s, as torch-cuda, then as a v1 report naming no executor: both accepted (the
    // delta is within bounds and the run does not screen), neither is GPU time.
    let unit = await nextUnit(node, runId, 0)
    await sleep(2100)
    assert.equal(verdictOf(await report(node, unit, delta(paramCount, 1), { tokens: 1, computeSeconds: 2, executor: 'torch-cuda' })), 'accepted')
    unit = await nextUnit(node, runId, unit.round)
    await sleep(2100)
    assert.equal(verdictOf(await report(node, unit, delta(paramCount, 2), { tokens: 1, computeSeconds: 2 })), 'accepted')
    // The whole unit at a GPU's rate (above the fixed floor of 10 TFLOP/s on this model): GPU time.
    unit = await nextUnit(node, runId, unit.round)
    const tokens = Math.min(unit.recipe.innerSteps * unit.recipe.batchSize * unit.recipe.seqLen, unit.ranges.reduce((n, r) => n + r.end - r.start, 0))
    const seconds = 0.5 * tokens * 6 * paramCount / 10e12
    assert.equal(verdictOf(await report(node, unit, delta(paramCount, 3), { tokens, computeSeconds: seconds, executor: 'torch-cuda' })), 'accepted')

    const rows = await db.query<{ executor: string | null, credited_cores: number | null }>(
      `select executor, credited_cores from ledger where run_id = $1 and peer_id = $2 and outcome = 'accepted' order by seq`, [runId, node.peerId])
    assert.deepEqual(rows.rows.map((r) => [r.executor, r.credited_cores]), [['torch-cuda', 1], [null, 1], ['torch-cuda', 0]])
    const counted = await contributions(coordinator, runId, node.peerId)
    assert.ok(Math.abs(counted.gpuHours - seconds / 3600) < 1e-12, `GPU-hours ${counted.gpuHours}: only the row at GPU speed`)
    assert.ok(Math.abs(counted.cpuCoreHours - 4 / 3600) < 1e-12, `core-hours ${counted.cpuCoreHours}: the two trickles, one core each`)
    // The GPU-hours stay within the row's tokens at the floor's rate.
    assert.ok(counted.gpuHours * 3600 <= tokens / (10e12 / (6 * paramCount)) + 1e-12)

    // The export carries the credit in hashed columns: it verifies, offline and with `ledger verify`.
    const res = await fetch(new URL(`api/runs/${runId}/ledger.json`, coordinator.url))
    const entries = parseLedgerJson(await res.text())
    assert.deepEqual(await verifyLedger(runId, entries), { ok: true, rows: entries.length })
    assert.deepEqual(entries.filter((e) => e.outcome === 'accepted').map((e) => e.creditedCores), [1, 1, 0])
    const verify = await runCli('coordinator/src/cli.ts', ['ledger', 'verify', '--run', runId, '--from', coordinator.url], env)
    assert.equal(verify.code, 0, verify.output)
    assert.match(verify.stdout, /ledger OK/)
  } finally {
    await node?.stop()
    await db.end()
    await coordinator.stop()
    await database.drop()
  }
})

test('units held at once cannot each claim the same wall-clock time; a node training them one after another is credited both', async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url }
  const coordinator = await startCoordinator({ env })
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  let node: ScriptedNode | undefined
  try {
    node = await scriptedNode(coordinator, 'Overlap Lab', { gpus: [H100] })
    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ codec: 'fp32', minNodes: 1, maxNodes: 1, rounds: 6, overlap: 'delayed' }), env)
    const { paramCount } = (await db.query<{ spec: { paramCount: number } }>('select spec from runs where id = $1', [runId])).rows[0]!.spec

    // Honest: round 1's unit and the look-ahead unit of round 2 come together; the node trains
    // one (3 s), reports it, trains the other (3 s), reports it. Both are credited.
    const u1 = await nextUnit(node, runId, 0)
    const u2 = await nextUnit(node, runId, 0, u1.assignmentId)
    assert.equal(u2.round, u1.round + 1)
    await sleep(3000)
    assert.equal(verdictOf(await report(node, u1, delta(paramCount, 1), { tokens: 64, computeSeconds: 3, executor: 'torch-cuda' })), 'accepted')
    await sleep(3000)
    assert.equal(verdictOf(await report(node, u2, delta(paramCount, 2), { tokens: 64, computeSeconds: 3, executor: 'torch-cuda' })), 'accepted')

    // The lie: the next two units come together, and after 10 s each claims all 10 s. (Each
    // claim may end up to 5 s past its report's arrival, for clock skew: a shorter lie would pass
    // on a busy machine whose first report and round close take over a second.)
    const u3 = await nextUnit(node, runId, u2.round)
    const u4 = await nextUnit(node, runId, u2.round, u3.assignmentId)
    const handedOut = Date.now()
    await sleep(10_000)
    assert.equal(verdictOf(await report(node, u3, delta(paramCount, 3), { tokens: 64, computeSeconds: 10, executor: 'torch-cuda' })), 'accepted')
    const second = await report(node, u4, delta(paramCount, 4), { tokens: 64, computeSeconds: 10, executor: 'torch-cuda' })
    assert.equal(verdictOf(second), 'ERR_BAD_REPORT')
    assert.match(!second.ok ? second.message : '', /earlier reports account for its time/)
    const elapsed = (Date.now() - handedOut) / 1000

    const claimed = await db.query<{ assignment_id: string, compute_seconds: number }>(
      `select assignment_id, compute_seconds from ledger where run_id = $1 and peer_id = $2 and outcome = 'accepted' order by seq`, [runId, node.peerId])
    assert.deepEqual(claimed.rows.map((r) => [r.assignment_id, r.compute_seconds]), [[u1.assignmentId, 3], [u2.assignmentId, 3], [u3.assignmentId, 10]])
    const lastTwo = claimed.rows.slice(2).reduce((a, r) => a + r.compute_seconds, 0)
    assert.ok(lastTwo <= elapsed + 5, `${lastTwo} s credited for units held ${elapsed.toFixed(1)} s`)
    const counted = await contributions(coordinator, runId, node.peerId)
    assert.ok(Math.abs(counted.gpuHours + counted.cpuCoreHours - 16 / 3600) < 1e-12, `${JSON.stringify(counted)}: 3 + 3 + 10 s`)
  } finally {
    await node?.stop()
    await db.end()
    await coordinator.stop()
    await database.drop()
  }
})

test('a real agent serving an overlapped run and a second run at once has every report accepted, and claims no more time than passed', async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url }
  const coordinator = await startCoordinator({ env })
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  const agent = await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Busy Lab'), name: 'busy' })
  try {
    const logs = { coordinator: coordinator.process.output, agent: agent.output }
    const overlapped = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ name: 'overlapped', overlap: 'delayed', rounds: 5 }), env)
    const other = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ name: 'other', rounds: 4 }), env)
    for (const runId of [overlapped, other]) await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000, logs)
    const rows = await db.query<{ run_id: string, outcome: string, reason: string | null, compute_seconds: number }>(
      'select run_id, outcome, reason, compute_seconds from ledger where peer_id = $1 order by seq', [agent.peerId])
    assert.deepEqual(rows.rows.filter((r) => r.outcome !== 'accepted').map((r) => r.reason), [], 'no report of the honest agent was refused')
    assert.deepEqual(new Set(rows.rows.map((r) => r.run_id)), new Set([overlapped, other]), 'it trained both runs')
    // Its claims laid end to end fit between its first unit's hand-out and its last report.
    const span = await db.query<{ seconds: number }>(
      `select extract(epoch from (select max(created_at) from ledger where peer_id = $1) - (select min(a.created_at) from assignments a join nodes n on n.id = a.node_id where n.peer_id = $1))::float8 as seconds`, [agent.peerId])
    const claimed = rows.rows.reduce((a, r) => a + r.compute_seconds, 0)
    assert.ok(claimed <= span.rows[0]!.seconds + 5, `${claimed} s claimed in ${span.rows[0]!.seconds} s`)
  } finally {
    await agent.stop()
    await db.end()
    await coordinator.stop()
    await database.drop()
  }
})

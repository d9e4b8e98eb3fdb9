import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import pg from 'pg'
import { MAX_UNIT_INNER_STEPS, canonicalReportMetadata, encodePseudoGradient } from '@barnraise/protocol'
import type { LedgerEntry, ReportResponse, TokenRange, WorkUnit } from '@barnraise/protocol'
import { CoordinatorClient, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { createTestDatabase } from './support/postgres.ts'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { startHostile } from './support/hostile.ts'
import type { Spawned } from './support/processes.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

// Units sized by throughput between real processes: an agent and an honest one four times
// slower. After the first round each gets the run's inner steps scaled by its measured speed,
// so the fast one trains more tokens a round than the slow one; both deltas fold by their tokens.
test('a run sized by throughput gives a fast node more steps a round than a slow one, and both are credited for what they trained', async () => {
  const coordinator = await startCoordinator()
  let agent: RunningAgent | undefined
  let slow: { peerId: string, proc: Spawned } | undefined
  try {
    const token = await coordinator.createToken('Mixed Speeds Lab', { uses: 2 })
    agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'fast' })
    slow = await startHostile('slow', coordinator.multiaddr, token, 'slow')
    const spec = tinyRunSpec({ unitSizing: 'throughput', minNodes: 2, rounds: 4, recipe: { innerSteps: 8, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2 } })
    const runId = await createRunViaCli(coordinator.dataDir, spec)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', undefined, { coordinator: coordinator.process.output, fast: agent.output, slow: slow.proc.output })

    const ledger = await getJson<LedgerEntry[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    assert.ok(ledger.every((e) => e.outcome === 'accepted'), JSON.stringify(ledger.map((e) => [e.round, e.outcome, e.reason])))
    const tokensOf = (peerId: string, round: number): number => ledger.find((e) => e.peerId === peerId && e.round === round)?.tokens ?? 0
    // Round 1: nobody measured yet, the run's 8 steps each (8 × 4 × 32 tokens).
    assert.equal(tokensOf(agent.peerId, 1), 1024)
    assert.equal(tokensOf(slow.peerId, 1), 1024)
    for (let round = 2; round <= 4; round++) {
      const fast = tokensOf(agent.peerId, round)
      const laptop = tokensOf(slow.peerId, round)
      assert.ok(fast > 1024 && laptop < 1024, `round ${round}: the fast node trained ${fast} tokens, the slow one ${laptop}`)
      assert.ok(fast <= 4 * 1024 && laptop >= 1024 / 4, 'within ¼× and 4× of the run\'s unit')
    }
    const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
    assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss!, 'the loss fell')
  } finally {
    await agent?.stop()
    await slow?.proc.stop()
    await coordinator.stop()
  }
})

/** A scripted node: the agent's own client, and its key to sign what it claims. */
interface Scripted { client: CoordinatorClient, key: PrivateKey, peerId: string, stop: () => Promise<void> }

/** Its next unit of a round after `after`, heartbeating and asking as an idle agent does. */
async function unitAfter (n: Scripted, after: number): Promise<WorkUnit> {
  for (let i = 0; i < 400; i++) {
    await n.client.heartbeat({ type: 'heartbeat', status: 'idle' })
    const reply = await n.client.requestWork()
    if (reply.kind === 'unit' && reply.unit.round > after) return reply.unit
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error('no work unit came')
}

/** Takes `secondsPerStep` a step of `unit` (as if training), then signs and sends a small fp32 report claiming them and all its tokens. */
async function reportUnit (n: Scripted, unit: WorkUnit, paramCount: number, secondsPerStep: number): Promise<ReportResponse> {
  await new Promise((resolve) => setTimeout(resolve, unit.recipe.innerSteps * secondsPerStep * 1000))
  // Bytes of its own each unit: another unit's accepted bytes would be refused as a replay.
  const values = new Float32Array(paramCount).fill(1e-6)
  values[0] = 1e-6 * (1 + parseInt(unit.assignmentId.slice(0, 8), 16) / 2 ** 32)
  const payload = encodePseudoGradient('fp32', values)
  const metadata = {
    runId: unit.runId, round: unit.round, assignmentId: unit.assignmentId, peerId: n.peerId,
    tokens: unit.recipe.innerSteps * unit.recipe.batchSize * unit.recipe.seqLen, computeSeconds: unit.recipe.innerSteps * secondsPerStep,
    lossCurve: [5], codec: 'fp32' as const, payloadBytes: payload.byteLength, payloadSha256: createHash('sha256').update(payload).digest('hex')
  }
  const signature = Buffer.from(await n.key.sign(canonicalReportMetadata(metadata))).toString('base64')
  return await n.client.sendReport({ type: 'report', metadata, signature }, payload)
}

// A run of 30,000 inner steps sized by throughput: a node that looks very fast would be sized
// 4× = 120,000 steps, more than a work unit may carry (no agent could read that reply, nor
// decline it), so it gets the most a unit may carry. When it leaves with that unit, the unit is
// requeued to a node sized 30,000: it goes out cut to that node's size, a part a round.
test('a fast node\'s unit is no larger than a work unit may carry; requeued, it is cut to the size of the node it goes to', async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url }
  const coordinator = await startCoordinator({ env })
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  const nodes: Scripted[] = []
  try {
    const node = async (lab: string, name: string): Promise<Scripted> => {
      const key = await generateKeyPair('Ed25519')
      const host = await createAgentHost(key)
      const client = new CoordinatorClient(host, parseCoordinatorAddress(coordinator.multiaddr))
      const hardware = { hostname: name, platform: 'linux', arch: 'x64', cpuModel: 'x', cpuCores: 1, memoryBytes: 2 ** 30, gpus: [] }
      await client.enroll({ type: 'enroll', agentVersion: '0', hardware, token: await coordinator.createToken(lab), name })
      await client.heartbeat({ type: 'heartbeat', status: 'idle' })
      const n = { client, key, peerId: host.peerId.toString(), stop: async () => { await host.stop() } }
      nodes.push(n)
      return n
    }
    const honest = await node('Honest Lab', 'honest')
    const fast = await node('Fast Lab', 'fast')
    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({
      codec: 'fp32', unitSizing: 'throughput', minNodes: 1, rounds: 4, roundDeadlineSeconds: 5,
      recipe: { innerSteps: 30_000, batchSize: 4, seqLen: 32, innerLr: 0.003, warmupSteps: 2 }
    }), env)
    const paramCount = (await db.query<{ spec: { paramCount: number } }>('select spec from runs where id = $1', [runId])).rows[0]!.spec.paramCount

    // Round 1: nobody measured; the fast node answers at once claiming next to no compute, the
    // honest one after 0.6 s, and says so.
    const h1 = await unitAfter(honest, 0)
    const f1 = await unitAfter(fast, 0)
    assert.deepEqual([h1.recipe.innerSteps, f1.recipe.innerSteps], [30_000, 30_000])
    assert.equal((await reportUnit(fast, f1, paramCount, 1e-9)).ok, true)
    assert.equal((await reportUnit(honest, h1, paramCount, 2e-5)).ok, true)

    // Round 2: the fast node's unit is the most a unit may carry, and its agent can read it.
    const f2 = await unitAfter(fast, 1)
    assert.equal(f2.recipe.innerSteps, MAX_UNIT_INNER_STEPS)
    const h2 = await unitAfter(honest, 1)
    assert.ok(h2.recipe.innerSteps < 30_000, `the honest node looks slower: ${h2.recipe.innerSteps} steps`)
    // The fast node leaves with its unit; the round closes at its deadline without it.
    await fast.stop()
    assert.equal((await reportUnit(honest, h2, paramCount, 2e-5)).ok, true)

    // Round 3: the honest node alone, sized the run's 30,000 steps, takes the first part of the
    // expired 100,000-step unit; round 4 the next, from where round 3's ended.
    const h3 = await unitAfter(honest, 2)
    assert.equal(h3.recipe.innerSteps, 30_000)
    assert.equal(h3.ranges[0]!.shard, f2.ranges[0]!.shard)
    assert.equal(h3.ranges[0]!.start, f2.ranges[0]!.start)
    assert.equal((await reportUnit(honest, h3, paramCount, 2e-5)).ok, true)
    const h4 = await unitAfter(honest, 3)
    assert.equal(h4.recipe.innerSteps, 30_000)
    const end = h3.ranges.at(-1)!
    assert.equal(h4.ranges[0]!.shard, end.shard)
    assert.equal(h4.ranges[0]!.start, end.end)
    const tokens = (ranges: TokenRange[]): number => ranges.reduce((s, r) => s + r.end - r.start, 0)
    // A part holds its steps' share of the unit's training windows.
    for (const part of [h3, h4]) assert.ok(Math.abs(tokens(part.ranges) / tokens(f2.ranges) - 0.3) < 0.01, `${tokens(part.ranges)} of ${tokens(f2.ranges)} tokens`)
    const pool = await db.query<{ status: string, requeued: boolean, requeued_steps: number }>('select status, requeued, requeued_steps from assignments where id = $1', [f2.assignmentId])
    assert.deepEqual(pool.rows[0], { status: 'expired', requeued: false, requeued_steps: 60_000 })
    const last = await reportUnit(honest, h4, paramCount, 2e-5)
    assert.equal(last.ok, true, JSON.stringify(last))
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', undefined, { coordinator: coordinator.process.output })
  } finally {
    for (const n of nodes) await n.stop().catch(() => {})
    await db.end()
    await coordinator.stop()
    await database.drop()
  }
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import pg from 'pg'
import { canonicalReportMetadata, encodePseudoGradient } from '@barnraise/protocol'
import type { ReportMetadata, ReportResponse, WorkUnit } from '@barnraise/protocol'
import { CoordinatorClient, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { startAgent, startCoordinator } from './support/cluster.ts'
import { createRunViaCli, tinyRunSpec } from './support/runs.ts'
import { createTestDatabase } from './support/postgres.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** Signs and sends one fp32 report for `unit` as `key`'s peer; `patch` changes what is claimed (and signed). */
async function report (client: CoordinatorClient, key: PrivateKey, peerId: string, unit: Pick<WorkUnit, 'runId' | 'round' | 'assignmentId'>, values: Float32Array, patch: Partial<ReportMetadata> = {}): Promise<ReportResponse> {
  const payload = encodePseudoGradient('fp32', values)
  const metadata: ReportMetadata = {
    runId: unit.runId, round: unit.round, assignmentId: unit.assignmentId, peerId, tokens: 100, computeSeconds: 1,
    lossCurve: [5], codec: 'fp32', payloadBytes: payload.byteLength, payloadSha256: sha(payload), ...patch
  }
  const signature = Buffer.from(await key.sign(canonicalReportMetadata(metadata))).toString('base64')
  return await client.sendReport({ type: 'report', metadata, signature }, payload)
}

test('credit cannot be inflated: impossible compute time and all-zero deltas earn nothing; strangers cannot grow the ledger', async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url }
  const coordinator = await startCoordinator({ env })
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  const nodeKey = await generateKeyPair('Ed25519')
  const node = await createAgentHost(nodeKey)
  const strangerKey = await generateKeyPair('Ed25519')
  const stranger = await createAgentHost(strangerKey)
  // An honest agent, so each round closes at quorum once the greedy node's unit is refused.
  const honest = await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Honest Lab') })
  try {
    const address = parseCoordinatorAddress(coordinator.multiaddr)
    const client = new CoordinatorClient(node, address)
    const hardware = { hostname: 'greedy', platform: 'linux', arch: 'x64', cpuModel: 'greedy', cpuCores: 1, memoryBytes: 1, gpus: [] }
    await client.enroll({ type: 'enroll', agentVersion: '0', hardware, token: await coordinator.createToken('Greedy Lab') })
    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ codec: 'fp32', minNodes: 2, rounds: 4, roundDeadlineSeconds: 60 }), env)
    const size = (await db.query<{ spec: { paramCount: number } }>('select spec from runs where id = $1', [runId])).rows[0]!.spec.paramCount
    const nextUnit = async (after: number): Promise<WorkUnit> => {
      for (let i = 0; i < 400; i++) {
        await client.heartbeat({ type: 'heartbeat', status: 'idle' })
        const reply = await client.requestWork()
        if (reply.kind === 'unit' && reply.unit.round > after) return reply.unit
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
      throw new Error('no work unit came')
    }
    const small = new Float32Array(size).fill(1e-6)

    // 1e308 seconds of compute on a unit handed out moments ago.
    let unit = await nextUnit(0)
    const overflow = await report(client, nodeKey, node.peerId.toString(), unit, small, { computeSeconds: 1e308 })
    assert.equal(!overflow.ok && overflow.code, 'ERR_BAD_REPORT')
    assert.match(!overflow.ok ? overflow.message : '', /handed out/)

    // A delta of zeros trained nothing.
    unit = await nextUnit(unit.round)
    const empty = await report(client, nodeKey, node.peerId.toString(), unit, new Float32Array(size))
    assert.equal(!empty.ok && empty.code, 'ERR_EMPTY_DELTA')

    // An honest report in the next round is credited what it claimed, within its unit.
    unit = await nextUnit(unit.round)
    assert.equal((await report(client, nodeKey, node.peerId.toString(), unit, small, { tokens: 64, computeSeconds: 0.5 })).ok, true)

    const rows = await db.query<{ outcome: string, tokens: number, compute_seconds: number, reason: string | null }>(
      'select outcome, tokens, compute_seconds, reason from ledger where run_id = $1 and peer_id = $2 order by seq', [runId, node.peerId.toString()])
    assert.deepEqual(rows.rows.map((r) => [r.outcome, r.reason?.split(':')[0] ?? null]), [['refused', 'ERR_BAD_REPORT'], ['refused', 'ERR_EMPTY_DELTA'], ['accepted', null]])
    const credited = await db.query<{ tokens: string, seconds: number }>(`select sum(tokens) as tokens, sum(compute_seconds) as seconds from ledger where run_id = $1 and peer_id = $2 and outcome = 'accepted'`, [runId, node.peerId.toString()])
    assert.deepEqual([Number(credited.rows[0]!.tokens), credited.rows[0]!.seconds], [64, 0.5])

    // Its core-hours were fixed when the row was written (64 tokens in 0.5 s shows one core):
    // re-joining with the most cores a profile may claim, or with GPUs, does not revalue them.
    const coreHours = async (): Promise<{ cpu: number, gpu: number }> => {
      const res = await fetch(new URL(`trpc/ledger.contributions?input=${encodeURIComponent(JSON.stringify({ runId }))}`, coordinator.url))
      const body = await res.json() as { result: { data: { nodes: Array<{ peerId: string, cpuCoreHours: number, gpuHours: number }> } } }
      const mine = body.result.data.nodes.find((n) => n.peerId === node.peerId.toString())!
      return { cpu: mine.cpuCoreHours, gpu: mine.gpuHours }
    }
    assert.deepEqual(await coreHours(), { cpu: 0.5 / 3600, gpu: 0 })
    await client.enroll({ type: 'enroll', agentVersion: '0', hardware: { ...hardware, cpuCores: 4096, gpus: [{ name: 'NVIDIA H100', memoryMiB: 81_559 }] } })
    assert.deepEqual(await coreHours(), { cpu: 0.5 / 3600, gpu: 0 })

    // A peer that never enrolled hammers the report protocol: no ledger rows, then it is rate-limited.
    // Rows it caused would carry its own peer id (the connection's); counted so, since the honest
    // agent's next reports land meanwhile.
    const rowsOf = async (peerId: string): Promise<number> => Number((await db.query<{ n: string }>('select count(*) as n from ledger where peer_id = $1', [peerId])).rows[0]!.n)
    const strangerClient = new CoordinatorClient(stranger, address)
    const codes: string[] = []
    for (let i = 0; i < 30; i++) {
      const r = await report(strangerClient, strangerKey, stranger.peerId.toString(), { runId, round: unit.round, assignmentId: randomUUID() }, small)
      codes.push(r.ok ? 'accepted' : r.code)
    }
    assert.ok(codes.slice(0, 20).every((c) => c === 'ERR_UNASSIGNED'), codes.join(','))
    assert.ok(codes.every((c) => c === 'ERR_UNASSIGNED' || c === 'ERR_RATE_LIMITED'), codes.join(','))
    assert.equal(codes.at(-1), 'ERR_RATE_LIMITED', `a burst of refusals is throttled: ${codes.join(',')}`)
    assert.equal(await rowsOf(stranger.peerId.toString()), 0, 'the stranger wrote nothing to any ledger')
    assert.equal((await fetch(new URL('healthz', coordinator.url))).status, 200)
  } finally {
    await honest.stop()
    await node.stop()
    await stranger.stop()
    await db.end()
    await coordinator.stop()
    await database.drop()
  }
})

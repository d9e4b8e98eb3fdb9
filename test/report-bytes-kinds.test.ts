import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import pg from 'pg'
import { canonicalReportMetadata, encodePseudoGradient } from '@barnraise/protocol'
import type { ReportMetadata, WorkUnit } from '@barnraise/protocol'
import { BlobCache, CoordinatorClient, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { startCoordinator, tempDir } from './support/cluster.ts'
import { createRunViaCli, tinyRunSpec } from './support/runs.ts'
import { createTestDatabase } from './support/postgres.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

// A node is served a round's published update to rebuild its base from. Sent back as its own
// report in another run of the same shape, those bytes shared the update's single blob row, so
// retiring the update deleted the file under an accepted report (the run failed at its next restart).
test('a report whose bytes are a round\'s published update is refused, and retiring the update deletes only the update', async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url }
  const coordinator = await startCoordinator({ env })
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  const nodes: Array<{ key: Awaited<ReturnType<typeof generateKeyPair>>, libp2p: Awaited<ReturnType<typeof createAgentHost>>, client: CoordinatorClient, peerId: string }> = []
  try {
    for (const lab of ['Lab One', 'Lab Two']) {
      const key = await generateKeyPair('Ed25519')
      const libp2p = await createAgentHost(key)
      const client = new CoordinatorClient(libp2p, parseCoordinatorAddress(coordinator.multiaddr))
      const hardware = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'c', cpuCores: 1, memoryBytes: 1, gpus: [] }
      await client.enroll({ type: 'enroll', agentVersion: '0', hardware, token: await coordinator.createToken(lab) })
      nodes.push({ key, libp2p, client, peerId: libp2p.peerId.toString() })
    }
    const spec = (name: string): ReturnType<typeof tinyRunSpec> => tinyRunSpec({ name, codec: 'int8', minNodes: 2, rounds: 5, roundDeadlineSeconds: 600 })
    const runA = await createRunViaCli(coordinator.dataDir, spec('run A'), env)
    const paramCount = (await db.query<{ spec: { paramCount: number } }>('select spec from runs where id = $1', [runA])).rows[0]!.spec.paramCount

    const nextUnit = async (n: typeof nodes[number], wanted: (u: WorkUnit) => boolean): Promise<WorkUnit> => {
      for (let i = 0; i < 400; i++) {
        await n.client.heartbeat({ type: 'heartbeat', status: 'idle' })
        const reply = await n.client.requestWork()
        if (reply.kind === 'unit' && wanted(reply.unit)) return reply.unit
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
      throw new Error('no unit came')
    }
    const send = async (n: typeof nodes[number], unit: WorkUnit, payload: Uint8Array): Promise<Awaited<ReturnType<CoordinatorClient['sendReport']>>> => {
      const metadata: ReportMetadata = {
        runId: unit.runId, round: unit.round, assignmentId: unit.assignmentId, peerId: n.peerId, tokens: 100, computeSeconds: 1,
        lossCurve: [5], codec: 'int8', payloadBytes: payload.byteLength, payloadSha256: sha(payload)
      }
      const signature = Buffer.from(await n.key.sign(canonicalReportMetadata(metadata))).toString('base64')
      return await n.client.sendReport({ type: 'report', metadata, signature }, payload)
    }
    const randomReport = (seed: number): Uint8Array => {
      const v = new Float32Array(paramCount)
      let s = seed
      for (let i = 0; i < v.length; i++) { s = (s * 1103515245 + 12345) & 0x7fffffff; v[i] = (s / 0x7fffffff - 0.5) * 1e-4 }
      return encodePseudoGradient('int8', v)
    }

    // Run A, round 1: two int8 reports, so round 2's units rebuild their base from the round's int8 mean U.
    for (const [i, n] of nodes.entries()) {
      const unit = await nextUnit(n, (u) => u.runId === runA && u.round === 1)
      assert.equal((await send(n, unit, randomReport(i + 1))).ok, true)
    }
    const a2 = await nextUnit(nodes[0]!, (u) => u.runId === runA && u.round === 2)
    const update = a2.update?.aggregate?.sha256
    assert.ok(update !== undefined, 'round 2 offers round 1\'s aggregate')
    const cache = new BlobCache(await tempDir('attacker'), nodes[0]!.libp2p, parseCoordinatorAddress(coordinator.multiaddr))
    const updateBytes = await cache.get(update)

    // Run B, the same shape: node 0 sends U's bytes as its report.
    const runB = await createRunViaCli(coordinator.dataDir, spec('run B'), env)
    assert.equal((await send(nodes[0]!, a2, randomReport(11))).ok, true)
    const b1 = await nextUnit(nodes[0]!, (u) => u.runId === runB && u.round === 1)
    const copied = await send(nodes[0]!, b1, updateBytes)
    assert.equal(copied.ok, false, 'the copied update is not a report')
    assert.ok(!copied.ok && copied.code === 'ERR_REPLAY', JSON.stringify(copied))
    assert.match(copied.ok ? '' : copied.message, /round update/)
    assert.deepEqual((await db.query('select kind from blobs where sha256 = $1', [update])).rows, [{ kind: 'update' }], 'U stays the update alone')
    assert.equal((await db.query<{ status: string }>('select status from assignments where id = $1', [b1.assignmentId])).rows[0]!.status, 'refused')

    // Round 2 of run A closes and retires U: its file goes, and nothing of run B named it.
    const a2b = await nextUnit(nodes[1]!, (u) => u.runId === runA && u.round === 2)
    assert.equal((await send(nodes[1]!, a2b, randomReport(12))).ok, true)
    for (let i = 0; i < 100; i++) {
      if ((await db.query<{ status: string }>('select status from rounds where run_id = $1 and number = 2', [runA])).rows[0]?.status === 'closed') break
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    assert.equal((await db.query('select 1 from assignments where report_blob = $1 and status in (\'accepted\', \'held\')', [update])).rowCount, 0)
    for (let i = 0; i < 50 && existsSync(join(coordinator.dataDir, 'blobs', update.slice(0, 2), update)); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(existsSync(join(coordinator.dataDir, 'blobs', update.slice(0, 2), update)), false, 'a retired update is deleted')
  } finally {
    for (const n of nodes) await n.libp2p.stop()
    await db.end()
    await coordinator.stop()
    await database.drop()
  }
}, 120_000)

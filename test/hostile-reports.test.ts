import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import pg from 'pg'
import { canonicalReportMetadata, encodePseudoGradient } from '@barnraise/protocol'
import type { ReportMetadata, WorkUnit } from '@barnraise/protocol'
import { CoordinatorClient, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { startAgent, startCoordinator } from './support/cluster.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import { createTestDatabase } from './support/postgres.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('a hostile agent', () => {
  test('NaN, wrong shape, oversized, replayed and unassigned reports are refused with reasons; honest training goes on', async () => {
    const database = await createTestDatabase()
    const env = { DATABASE_URL: database.url }
    const coordinator = await startCoordinator({ env })
    const key = await generateKeyPair('Ed25519')
    const libp2p = await createAgentHost(key)
    const peerId = libp2p.peerId.toString()
    const db = new pg.Client({ connectionString: database.url })
    await db.connect()
    const honest = await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Honest Lab') })
    try {
      const client = new CoordinatorClient(libp2p, parseCoordinatorAddress(coordinator.multiaddr))
      const hardware = { hostname: 'evil', platform: 'linux', arch: 'x64', cpuModel: 'evil', cpuCores: 1, memoryBytes: 1, gpus: [] }
      await client.enroll({ type: 'enroll', agentVersion: '0', hardware, token: await coordinator.createToken('Evil Lab') })
      const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ codec: 'fp32', minNodes: 2, rounds: 7, roundDeadlineSeconds: 30 }), env)

      const nextUnit = async (after: number): Promise<WorkUnit> => {
        for (let i = 0; i < 400; i++) {
          await client.heartbeat({ type: 'heartbeat', status: 'idle' })
          const reply = await client.requestWork()
          if (reply.kind === 'unit' && reply.unit.round > after) return reply.unit
          await new Promise((resolve) => setTimeout(resolve, 250))
        }
        throw new Error('no work unit came')
      }
      const send = async (unit: WorkUnit, values: Float32Array | Uint8Array, patch: Partial<ReportMetadata> = {}, forge = false) => {
        const payload = values instanceof Float32Array ? encodePseudoGradient('fp32', values) : values
        const metadata: ReportMetadata = {
          runId: unit.runId, round: unit.round, assignmentId: unit.assignmentId, peerId, tokens: 100, computeSeconds: 1,
          lossCurve: [5], codec: 'fp32', payloadBytes: payload.byteLength, payloadSha256: sha(payload), ...patch
        }
        const signature = Buffer.from(await key.sign(canonicalReportMetadata(metadata))).toString('base64')
        // A forger changes what was signed afterwards, e.g. to claim more tokens.
        if (forge) metadata.tokens *= 100
        return { verdict: await client.sendReport({ type: 'report', metadata, signature }, payload), metadata, signature, payload }
      }

      // Round 1: a unit it was not given, a forged signature, then an oversized payload.
      let unit = await nextUnit(0)
      const size = (await db.query<{ spec: { paramCount: number } }>('select spec from runs where id = $1', [runId])).rows[0]!.spec.paramCount
      const zeros = new Float32Array(size)
      // A small honest-looking delta: all zeros trains nothing and is refused (ERR_EMPTY_DELTA).
      const small = new Float32Array(size).fill(1e-6)
      const r1 = await send({ ...unit, assignmentId: randomUUID() }, zeros)
      assert.deepEqual([r1.verdict.ok, !r1.verdict.ok && r1.verdict.code], [false, 'ERR_UNASSIGNED'])
      const forged = await send(unit, zeros, {}, true)
      assert.equal(!forged.verdict.ok && forged.verdict.code, 'ERR_BAD_SIGNATURE')
      const oversized = await send(unit, new Uint8Array(size * 4 * 10))
      assert.equal(!oversized.verdict.ok && oversized.verdict.code, 'ERR_WRONG_SHAPE')
      assert.match(!oversized.verdict.ok ? oversized.verdict.message : '', /oversized payload/)

      // Round 2: NaN.
      unit = await nextUnit(unit.round)
      const nan = new Uint8Array(encodePseudoGradient('fp32', zeros))
      new DataView(nan.buffer).setFloat32(40, Number.NaN, true)
      const r2 = await send(unit, nan)
      assert.equal(!r2.verdict.ok && r2.verdict.code, 'ERR_NOT_FINITE')

      // Round 3: the wrong shape (a payload for a smaller model).
      unit = await nextUnit(unit.round)
      const r3 = await send(unit, new Float32Array(size - 7))
      assert.equal(!r3.verdict.ok && r3.verdict.code, 'ERR_WRONG_SHAPE')

      // Round 4: a well-formed report in a codec the run's spec does not name is refused at admission.
      unit = await nextUnit(unit.round)
      const sparse = encodePseudoGradient('topk', small)
      const mixed = await send(unit, sparse, { codec: 'topk' })
      assert.equal(!mixed.verdict.ok && mixed.verdict.code, 'ERR_WRONG_SHAPE')
      assert.match(!mixed.verdict.ok ? mixed.verdict.message : '', /the run uses codec fp32, not topk/)

      // Round 5: more losses than the unit has steps (one a step at most; agents sample long curves down).
      unit = await nextUnit(unit.round)
      const overlong = await send(unit, small, { tokens: 50, lossCurve: Array.from({ length: unit.recipe.innerSteps + 1 }, () => 3) })
      assert.equal(!overlong.verdict.ok && overlong.verdict.code, 'ERR_BAD_REPORT')
      assert.match(!overlong.verdict.ok ? overlong.verdict.message : '', new RegExp(`loss curve has ${unit.recipe.innerSteps + 1} points; this unit trains ${unit.recipe.innerSteps} steps`))

      // Round 6: a valid report is accepted; after its round closes, replaying it is refused.
      unit = await nextUnit(unit.round)
      const good = await send(unit, small, { tokens: 50 })
      assert.equal(good.verdict.ok, true)
      const again = await client.sendReport({ type: 'report', metadata: good.metadata, signature: good.signature }, good.payload)
      assert.deepEqual(again, { ok: true, outcome: 'accepted', duplicate: true }, 'a retry in the same round is idempotent')
      // A retry may not announce a size of its own: the coordinator would allocate and read it.
      const bloated = { ...good.metadata, payloadBytes: 8 * 2 ** 30 }
      const bloatedSignature = Buffer.from(await key.sign(canonicalReportMetadata(bloated))).toString('base64')
      const bloatedRetry = await client.sendReport({ type: 'report', metadata: bloated, signature: bloatedSignature }, good.payload)
      assert.equal(!bloatedRetry.ok && bloatedRetry.code, 'ERR_WRONG_SHAPE')
      assert.match(!bloatedRetry.ok ? bloatedRetry.message : '', /a retry of the accepted report must announce its \d+ bytes, not 8589934592/)
      unit = await nextUnit(unit.round)
      const replay = await client.sendReport({ type: 'report', metadata: good.metadata, signature: good.signature }, good.payload)
      assert.equal(!replay.ok && replay.code, 'ERR_REPLAY')
      // Sent again and again, it is refused each time, and the ledger keeps the first.
      for (let i = 0; i < 3; i++) {
        const more = await client.sendReport({ type: 'report', metadata: good.metadata, signature: good.signature }, good.payload)
        assert.equal(!more.ok && more.code, 'ERR_REPLAY')
      }
      const replayRows = await db.query(`select 1 from ledger where assignment_id = $1 and reason like 'ERR_REPLAY:%'`, [good.metadata.assignmentId])
      assert.equal(replayRows.rowCount, 1, 'one ERR_REPLAY row for one replayed unit')
      // Report round 7 honestly-shaped so the run need not wait for the deadline (with bytes of
      // its own: round 6's accepted bytes again would be a replay of that unit's report).
      assert.equal((await send(unit, new Float32Array(size).fill(2e-6), { tokens: 50 })).verdict.ok, true)

      // The honest agent finished the run; no hostile payload reached a checkpoint.
      await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000)
      // A finished run's ledger is closed: replays of its reports are refused and leave no row.
      const rows = async (): Promise<number> => (await db.query('select 1 from ledger where run_id = $1', [runId])).rowCount ?? 0
      const before = await rows()
      const late = await client.sendReport({ type: 'report', metadata: good.metadata, signature: good.signature }, good.payload)
      assert.equal(!late.ok && late.code, 'ERR_REPLAY')
      assert.equal(await rows(), before)
      const refused = await db.query<{ reason: string }>(`select reason from ledger where run_id = $1 and outcome = 'refused' order by seq`, [runId])
      const reasons = refused.rows.map((r) => r.reason.split(':')[0])
      for (const code of ['ERR_BAD_SIGNATURE', 'ERR_WRONG_SHAPE', 'ERR_NOT_FINITE', 'ERR_BAD_REPORT', 'ERR_REPLAY']) {
        assert.ok(reasons.includes(code), `ledger records ${code}: ${reasons.join(', ')}`)
      }
      assert.ok(!reasons.includes('ERR_UNASSIGNED'), 'a unit the node was never given leaves no ledger row')
      const accepted = await db.query<{ round: number, peer_id: string }>(`select round, peer_id from ledger where run_id = $1 and outcome = 'accepted' and round <= 5`, [runId])
      assert.ok(accepted.rows.every((r) => r.peer_id === honest.peerId), 'rounds 1-5 folded only the honest report')
      const checkpoints = await getJson<Array<{ valLoss: number | null }>>(coordinator.url, `api/runs/${runId}/checkpoints`)
      assert.ok(checkpoints.every((c) => c.valLoss === null || Number.isFinite(c.valLoss)))
      assert.equal((await fetch(new URL('healthz', coordinator.url))).status, 200)
    } finally {
      await libp2p.stop()
      await db.end()
      await honest.stop()
      await coordinator.stop()
      await database.drop()
    }
  })
})

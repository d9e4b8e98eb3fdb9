import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import {
  BLOB_CHUNK_BYTES, JsonStream, REPORT_PROTOCOL, canonicalReportMetadata, encodePseudoGradient, reportAdmissionSchema, reportResponseSchema
} from '@barnraise/protocol'
import type { ReportHeader, ReportMetadata, WorkUnit } from '@barnraise/protocol'
import { Coordinator } from '@barnraise/coordinator'
import { CoordinatorClient, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { tempDir } from './support/cluster.ts'
import { runCli } from './support/processes.ts'
import { createRunViaCli, tinyRunSpec } from './support/runs.ts'
import { waitForUnit } from './support/work-units.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const hardware = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 1, memoryBytes: 1, gpus: [] }

interface Node { key: PrivateKey, host: Libp2p, client: CoordinatorClient }

// Small limits so the test is quick: an upload may fall 1 s behind 4 KiB/s, reports in flight
// may hold 1 byte (one upload is always let in), and a lab may enroll two nodes.
describe('report uploads as a whole, enrollment per lab, and copied reports', () => {
  let coordinator: Coordinator
  let dataDir: string
  const hosts: Libp2p[] = []
  beforeAll(async () => {
    dataDir = await tempDir('uploads-coord')
    coordinator = await Coordinator.start({
      dataDir, httpPort: 0, p2pPort: 0, tickMs: 200,
      peerLimits: { minBytesPerSecond: 4096 },
      reportUploads: { rateGraceMs: 1000, maxInFlightBytes: 1 },
      maxNodesPerOrganization: 2
    })
  })
  afterAll(async () => {
    for (const h of hosts) await h.stop()
    await coordinator.stop()
  })
  const address = (): ReturnType<typeof parseCoordinatorAddress> => parseCoordinatorAddress(coordinator.multiaddrs[0]!)
  const node = async (): Promise<Node> => {
    const key = await generateKeyPair('Ed25519')
    const host = await createAgentHost(key)
    hosts.push(host)
    return { key, host, client: new CoordinatorClient(host, address()) }
  }
  const header = async (n: Node, unit: WorkUnit, payload: Uint8Array): Promise<ReportHeader> => {
    const metadata: ReportMetadata = {
      runId: unit.runId, round: unit.round, assignmentId: unit.assignmentId, peerId: n.host.peerId.toString(), tokens: 50, computeSeconds: 1,
      lossCurve: [5], codec: 'fp32', payloadBytes: payload.byteLength, payloadSha256: sha(payload)
    }
    return { type: 'report', metadata, signature: Buffer.from(await n.key.sign(canonicalReportMetadata(metadata))).toString('base64') }
  }
  const open = async (n: Node, h: ReportHeader): Promise<{ messages: JsonStream, admission: ReturnType<typeof reportAdmissionSchema.parse> }> => {
    const messages = new JsonStream(await n.host.dialProtocol(address(), REPORT_PROTOCOL), BLOB_CHUNK_BYTES)
    await messages.write(h)
    return { messages, admission: await messages.read(reportAdmissionSchema) }
  }

  test('a trickling upload is cut once it falls behind the minimum rate; one upload in flight fills the budget and the next is busy; another unit\'s bytes are a replay', async () => {
    const tokenRun = await runCli('coordinator/src/cli.ts', ['token', 'create', '--org', 'Upload Lab', '--uses', '3', '--data-dir', dataDir, '--json'])
    assert.equal(tokenRun.code, 0, tokenRun.output)
    const { token } = JSON.parse(tokenRun.stdout) as { token: string }
    const a = await node()
    const b = await node()
    await a.client.enroll({ type: 'enroll', agentVersion: '0', hardware, token })
    await b.client.enroll({ type: 'enroll', agentVersion: '0', hardware, token })
    // A third machine of the lab is past its cap: refused with the flag to raise, its token use unspent.
    const c = await node()
    const refused = await c.client.enroll({ type: 'enroll', agentVersion: '0', hardware, token }).then(() => undefined, (err: unknown) => err)
    assert.ok(refused instanceof RefusedError && refused.code === 'ERR_QUOTA_EXCEEDED', String(refused))
    assert.match(refused.message, /already has 2 enrolled nodes.*--max-nodes-per-lab/)
    const uses = await coordinator.database.db.selectFrom('enrollment_tokens').select('used_count').executeTakeFirstOrThrow()
    assert.equal(uses.used_count, 2)

    const runId = await createRunViaCli(dataDir, tinyRunSpec({ codec: 'fp32', minNodes: 2, rounds: 2, roundDeadlineSeconds: 300 }))
    const [unitA, unitB] = await Promise.all([waitForUnit(a.client), waitForUnit(b.client)])
    assert.ok(unitA !== undefined && unitB !== undefined, 'both nodes got a unit')
    const spec = await coordinator.database.db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirstOrThrow()
    const paramCount = (spec.spec as { paramCount: number }).paramCount
    const payload = encodePseudoGradient('fp32', new Float32Array(paramCount).fill(1e-6))
    const headerA = await header(a, unitA, payload)

    // Most of nothing, then a byte at a time, never idle: cut when it falls behind 4 KiB/s
    // (after its 1 s of grace), not at the whole payload's deadline minutes away.
    const trickle = await open(a, headerA)
    assert.deepEqual(trickle.admission, { proceed: true })
    await trickle.messages.writeFrame(payload.subarray(0, 1024))
    const answer = trickle.messages.read(reportResponseSchema, 60_000)
    let answered = false
    void answer.then(() => { answered = true }, () => { answered = true })
    for (let i = 1024; i < 1024 + 300 && !answered; i++) {
      await trickle.messages.writeFrame(payload.subarray(i, i + 1)).catch(() => undefined)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const cut = await answer
    assert.equal(!cut.ok && cut.code, 'ERR_TIMEOUT')
    assert.match(!cut.ok ? cut.message : '', /fell behind the minimum rate: \d+ of \d+ bytes in [\d.]+ s, where an upload must average 4096 bytes\/s after its first 1 s/)
    const unitRow = async (id: string): Promise<{ status: string }> => await coordinator.database.db.selectFrom('assignments').select('status').where('id', '=', id).executeTakeFirstOrThrow()
    assert.equal((await unitRow(unitA.assignmentId)).status, 'assigned', 'the cut upload settled nothing')

    // A's upload in flight holds the whole budget (and its room was given back by the cut one):
    // B's header is answered busy before admission, so B's unit is untouched.
    const held = await open(a, headerA)
    assert.deepEqual(held.admission, { proceed: true })
    await held.messages.writeFrame(payload.subarray(0, 16 * 1024))
    const headerB = await header(b, unitB, payload)
    const busy = await open(b, headerB)
    assert.equal(!busy.admission.proceed && busy.admission.code, 'ERR_BUSY')
    assert.match(!busy.admission.proceed ? busy.admission.message : '', /--max-report-upload-mb\); send this report again in a minute/)
    await busy.messages.close()
    const claimedB = await coordinator.database.db.selectFrom('assignments').select('compute_claimed_seconds').where('id', '=', unitB.assignmentId).executeTakeFirstOrThrow()
    assert.equal(claimedB.compute_claimed_seconds, null, 'the busy answer wrote nothing')
    for (let at = 16 * 1024; at < payload.byteLength; at += BLOB_CHUNK_BYTES) await held.messages.writeFrame(payload.subarray(at, at + BLOB_CHUNK_BYTES))
    const accepted = await held.messages.read(reportResponseSchema, 60_000)
    assert.deepEqual(accepted, { ok: true, outcome: 'accepted', duplicate: false })
    await held.messages.close()

    // B sends A's accepted bytes as its own unit's training (this run does not screen): a replay,
    // which spends B's unit. Its room is free again, so B is admitted first.
    const copy = await b.client.sendReport(headerB, payload)
    assert.equal(!copy.ok && copy.code, 'ERR_REPLAY')
    assert.match(!copy.ok ? copy.message : '', /another work unit's report \(round 1 of this run\)/)
    assert.equal((await unitRow(unitB.assignmentId)).status, 'refused')
    // A's own retry (its reply lost) is still answered as before.
    assert.deepEqual(await a.client.sendReport(headerA, payload), { ok: true, outcome: 'accepted', duplicate: true })
    const ledger = await coordinator.database.db.selectFrom('ledger').select(['outcome', 'reason']).where('run_id', '=', runId).orderBy('seq').execute()
    assert.deepEqual(ledger.map((r) => r.outcome), ['accepted', 'refused'])
    assert.match(ledger[1]!.reason ?? '', /^ERR_REPLAY:/)
  })
})

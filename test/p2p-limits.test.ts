import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import net from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import {
  BLOB_PROTOCOL, ENROLL_PROTOCOL, HEARTBEAT_PROTOCOL, JsonStream, REPORT_PROTOCOL, WORK_PROTOCOL, BLOB_CHUNK_BYTES, canonicalReportMetadata, reportAdmissionSchema, reportResponseSchema
} from '@barnraise/protocol'
import type { ReportHeader } from '@barnraise/protocol'
import { Coordinator } from '@barnraise/coordinator'
import type { CoordinatorOptions } from '@barnraise/coordinator'
import { CoordinatorClient, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { tempDir } from './support/cluster.ts'
import { runCli } from './support/processes.ts'
import { createRunViaCli, tinyRunSpec } from './support/runs.ts'
import { waitForUnit } from './support/work-units.ts'

describe('per-peer limits on the libp2p host', () => {
  let coordinator: Coordinator
  let dataDir: string
  const hosts: Libp2p[] = []
  const host = async (key?: PrivateKey): Promise<Libp2p> => {
    const h = await createAgentHost(key ?? await generateKeyPair('Ed25519'))
    hosts.push(h)
    return h
  }
  beforeAll(async () => {
    dataDir = await tempDir('limits-coord')
    coordinator = await Coordinator.start({ dataDir, httpPort: 0, p2pPort: 0, tickMs: 200, peerLimits: { maxConnectionsPerPeer: 1, maxStreamsPerConnection: 8, frameIdleTimeoutMs: 1500 } })
  })
  afterAll(async () => {
    for (const h of hosts) await h.stop()
    await coordinator.stop()
  })
  const address = (): ReturnType<typeof parseCoordinatorAddress> => parseCoordinatorAddress(coordinator.multiaddrs[0]!)

  test('one peer id never holds more connections than its cap: a new one replaces the oldest', async () => {
    const key = await generateKeyPair('Ed25519')
    const first = await host(key)
    const second = await host(key)
    await first.dial(address())
    // The newcomer is served (an unenrolled peer's refusal is a protocol reply, not a closed connection)…
    const reply = await new CoordinatorClient(second, address()).requestWork().then(() => undefined, (err: unknown) => err)
    assert.ok(reply instanceof RefusedError && reply.code === 'ERR_NOT_ENROLLED', String(reply))
    // …and the older connection is gone, so the peer id holds one.
    const open = (h: Libp2p | Coordinator['libp2p']): number => h.getConnections(first.peerId).filter((c) => c.status === 'open').length
    for (let i = 0; i < 50 && open(first) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(open(first), 0, 'the oldest connection was closed')
    assert.equal(open(coordinator.libp2p), 1)
  })

  test('more concurrent streams than allowed, per protocol or per connection, are reset', async () => {
    const h = await host()
    const held = []
    for (let i = 0; i < 4; i++) held.push(await h.dialProtocol(address(), WORK_PROTOCOL))
    // The coordinator resets the fifth; no reply comes on it.
    const fifth = h.dialProtocol(address(), WORK_PROTOCOL).then(async (stream) => {
      const messages = new JsonStream(stream)
      await messages.write({ type: 'work' })
      return await messages.readFrame(5_000)
    })
    await assert.rejects(fifth)
    // Across protocols the connection as a whole takes 8 (identify may hold one of them).
    for (let i = 0; i < 3; i++) held.push(await h.dialProtocol(address(), HEARTBEAT_PROTOCOL))
    const more = (async () => {
      for (let i = 0; i < 2; i++) held.push(await h.dialProtocol(address(), BLOB_PROTOCOL))
      const last = new JsonStream(await h.dialProtocol(address(), ENROLL_PROTOCOL))
      await last.write({ type: 'enroll' })
      return await last.readFrame(5_000)
    })()
    await assert.rejects(more)
    for (const s of held) s.abort(new Error('done'))
  })

  test('one upload per work unit at a time; a sender that stalls is cut off, and one revoked mid-upload refused, with nothing folded', async () => {
    const key = await generateKeyPair('Ed25519')
    const h = await host(key)
    const client = new CoordinatorClient(h, address())
    const tokenRun = await runCli('coordinator/src/cli.ts', ['token', 'create', '--org', 'Limits Lab', '--uses', '1', '--data-dir', dataDir, '--json'])
    assert.equal(tokenRun.code, 0, tokenRun.output)
    const { token } = JSON.parse(tokenRun.stdout) as { token: string }
    const hardware = { hostname: 'slow', platform: 'linux', arch: 'x64', cpuModel: 'slow', cpuCores: 1, memoryBytes: 1, gpus: [] }
    await client.enroll({ type: 'enroll', agentVersion: '0', hardware, token })
    const runId = await createRunViaCli(dataDir, tinyRunSpec({ codec: 'fp32', minNodes: 1, rounds: 2, roundDeadlineSeconds: 60 }))
    const unit = await waitForUnit(client)
    assert.ok(unit !== undefined, 'a work unit came')
    const spec = await coordinator.database.db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirstOrThrow()
    const payloadBytes = (spec.spec as { paramCount: number }).paramCount * 4
    const metadata = {
      runId, round: unit.round, assignmentId: unit.assignmentId, peerId: h.peerId.toString(), tokens: 1, computeSeconds: 1,
      lossCurve: [5], codec: 'fp32' as const, payloadBytes, payloadSha256: '0'.repeat(64)
    }
    const header: ReportHeader = { type: 'report', metadata, signature: Buffer.from(await key.sign(canonicalReportMetadata(metadata))).toString('base64') }

    const slow = new JsonStream(await h.dialProtocol(address(), REPORT_PROTOCOL), BLOB_CHUNK_BYTES)
    await slow.write(header)
    assert.deepEqual(await slow.read(reportAdmissionSchema), { proceed: true })
    await slow.writeFrame(new Uint8Array(Math.min(1024, payloadBytes - 1)))

    const claimed = async (): Promise<unknown> => await coordinator.database.db.selectFrom('assignments').select(['compute_claimed_seconds', 'compute_from']).where('id', '=', unit.assignmentId).executeTakeFirstOrThrow()
    const before = await claimed()
    // The same unit again, claiming other compute: refused as busy, having changed nothing.
    const again = { ...metadata, computeSeconds: 2 }
    const second = new JsonStream(await h.dialProtocol(address(), REPORT_PROTOCOL), BLOB_CHUNK_BYTES)
    await second.write({ type: 'report', metadata: again, signature: Buffer.from(await key.sign(canonicalReportMetadata(again))).toString('base64') })
    const busy = await second.read(reportAdmissionSchema)
    assert.equal(!busy.proceed && busy.code, 'ERR_BUSY')
    assert.deepEqual(await claimed(), before, 'the busy stream did not re-place the unit\'s compute time')

    // Nothing more comes on the first stream: past the idle limit the coordinator gives up on it.
    const started = Date.now()
    const verdict = await slow.read(reportResponseSchema, 20_000)
    assert.equal(!verdict.ok && verdict.code, 'ERR_TIMEOUT')
    assert.ok(Date.now() - started < 10_000, 'cut off at the idle limit, not left hanging')
    const assignment = await coordinator.database.db.selectFrom('assignments').select('status').where('id', '=', unit.assignmentId).executeTakeFirstOrThrow()
    assert.equal(assignment.status, 'assigned', 'the unit was neither accepted nor spent')
    const rows = await coordinator.database.db.selectFrom('ledger').select('outcome').where('run_id', '=', runId).where('outcome', '=', 'accepted').execute()
    assert.deepEqual(rows, [], 'nothing was credited')

    // A unit that stops counting mid-upload (here marked expired straight in the database, as
    // when its round closes): the upload is cut within seconds, not buffered to its end.
    const trickle = new JsonStream(await h.dialProtocol(address(), REPORT_PROTOCOL), BLOB_CHUNK_BYTES)
    await trickle.write(header)
    assert.deepEqual(await trickle.read(reportAdmissionSchema), { proceed: true })
    await coordinator.database.db.updateTable('assignments').set({ status: 'expired' }).where('id', '=', unit.assignmentId).execute()
    const answer = trickle.read(reportResponseSchema, 20_000)
    let answered = false
    void answer.then(() => { answered = true }, () => { answered = true })
    // One byte every half second: never idle, and far from the whole payload.
    for (let i = 0; i < 24 && !answered; i++) {
      await trickle.writeFrame(new Uint8Array(1)).catch(() => undefined)
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    const cut = await answer
    assert.equal(!cut.ok && cut.code, 'ERR_STALE')
    assert.match(!cut.ok ? cut.message : '', /the round closed while the report was uploading \(\d+ of \d+ bytes in\)/)
    await coordinator.database.db.updateTable('assignments').set({ status: 'assigned' }).where('id', '=', unit.assignmentId).execute()

    // Revoked while the payload is on the wire (here straight in the database, so the
    // connection stays up): the rest arrives, and the report is still refused.
    const late = new JsonStream(await h.dialProtocol(address(), REPORT_PROTOCOL), BLOB_CHUNK_BYTES)
    await late.write(header)
    assert.deepEqual(await late.read(reportAdmissionSchema), { proceed: true })
    await late.writeFrame(new Uint8Array(1024))
    await coordinator.database.db.updateTable('nodes').set({ revoked_at: new Date() }).where('peer_id', '=', h.peerId.toString()).execute()
    for (let sent = 1024; sent < payloadBytes; sent += BLOB_CHUNK_BYTES) await late.writeFrame(new Uint8Array(Math.min(BLOB_CHUNK_BYTES, payloadBytes - sent)))
    const refused = await late.read(reportResponseSchema, 20_000)
    assert.equal(!refused.ok && refused.code, 'ERR_NODE_REVOKED')
    const after = await coordinator.database.db.selectFrom('assignments').select('status').where('id', '=', unit.assignmentId).executeTakeFirstOrThrow()
    assert.equal(after.status, 'assigned', 'nothing settled for a revoked node')
  })

  test('a burst of connections from one address beyond the per-second threshold is refused, and the address recovers', async () => {
    // Let the earlier tests' connections age out of the rate window.
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    const burst = await Promise.all(Array.from({ length: 9 }, async () => await host()))
    const results = await Promise.allSettled(burst.map(async (h) => await h.dial(address())))
    const connected = results.filter((r) => r.status === 'fulfilled').length
    assert.ok(connected <= 5, `at most 5 new connections per second from one address, got ${connected}`)
    assert.ok(connected >= 1, 'the first ones are served')
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    await (await host()).dial(address())
  })
})

describe('strangers cannot hold the libp2p host\'s places', () => {
  const coordinators: Coordinator[] = []
  const hosts: Libp2p[] = []
  const sockets: net.Socket[] = []
  afterAll(async () => {
    for (const s of sockets) s.destroy()
    for (const h of hosts) await h.stop()
    for (const c of coordinators) await c.stop()
  })
  const start = async (peerLimits: CoordinatorOptions['peerLimits']): Promise<Coordinator> => {
    const c = await Coordinator.start({ dataDir: await tempDir('strangers-coord'), httpPort: 0, p2pPort: 0, tickMs: 1000, peerLimits })
    coordinators.push(c)
    return c
  }
  const host = async (key?: PrivateKey): Promise<Libp2p> => {
    const h = await createAgentHost(key ?? await generateKeyPair('Ed25519'))
    hosts.push(h)
    return h
  }
  /** Waits, within a bound, for `condition`; then asserts it. */
  const until = async (condition: () => boolean | Promise<boolean>, what: () => string): Promise<void> => {
    for (let i = 0; i < 600 && !await condition(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.ok(await condition(), what())
  }
  /** Makes `peerId` an enrolled node, as the enroll protocol would. */
  const enrol = async (c: Coordinator, peerId: string): Promise<void> => {
    const db = c.database.db
    const org = await db.insertInto('organizations').values({ name: `Lab ${peerId.slice(-8)}` }).returning('id').executeTakeFirstOrThrow()
    await db.insertInto('nodes').values({ peer_id: peerId, organization_id: org.id, name: peerId.slice(-8), hardware: '{}', agent_version: '0', enrolled_with_token_id: null, first_seen_at: new Date(), last_seen_at: new Date() }).execute()
  }
  const served = async (h: Libp2p, c: Coordinator): Promise<unknown> =>
    await new CoordinatorClient(h, parseCoordinatorAddress(c.multiaddrs[0]!)).requestWork().then(() => 'work', (err: unknown) => err)

  test('connections that stall in the handshake from other addresses do not keep a peer out', async () => {
    // A global cap of 16 handshakes (a few hundred by default) and a per-second rate high enough
    // for one burst to reach it: what many slower addresses do at the default scale. The stalled
    // handshakes are given a minute, so they are all still held when the peer dials. (A raised
    // rate raises the per-address caps with it unless they are given, as here.)
    const c = await start({ maxIncomingPendingConnections: 16, inboundConnectionThreshold: 1000, maxHandshakesPerAddress: 4, inboundUpgradeTimeoutMs: 60_000 })
    const port = Number(/\/tcp\/(\d+)/.exec(c.multiaddrs[0]!)![1])
    const open = new Set<net.Socket>()
    for (const localAddress of ['127.0.0.2', '127.0.0.3']) {
      for (let i = 0; i < 20; i++) {
        const s = net.connect({ host: '127.0.0.1', port, localAddress })
        sockets.push(s)
        open.add(s)
        s.on('error', () => {})
        s.on('close', () => { open.delete(s) })
      }
    }
    // Each address keeps its 4 (maxHandshakesPerAddress); the rest are closed as they come.
    await until(() => open.size <= 8, () => `the sockets past each address's share were closed (${open.size} of 40 still open)`)
    assert.equal(open.size, 8, 'each address holds its share of stalled handshakes')
    const reply = await served(await host(), c)
    assert.ok(reply instanceof RefusedError && reply.code === 'ERR_NOT_ENROLLED', `a peer from another address is served: ${String(reply)}`)
  })

  test('idle strangers cannot take the places an enrolled node needs: the newest replaces the oldest', async () => {
    // Ten places, eight of them open to strangers; loopback stands in for many addresses, so the
    // per-address caps are lifted and only the share of the total holds strangers back.
    const c = await start({ maxConnections: 10, inboundConnectionThreshold: 1000, maxStrangersPerAddress: 100, maxStrangersPerNetwork: 100 })
    const address = parseCoordinatorAddress(c.multiaddrs[0]!)
    const key = await generateKeyPair('Ed25519')
    const node = await host(key)
    await enrol(c, node.peerId.toString())
    const strangers: Libp2p[] = []
    for (let i = 0; i < 12; i++) {
      const h = await host()
      await h.dial(address)
      strangers.push(h)
    }
    const open = (): number => c.libp2p.getConnections().filter((conn) => conn.status === 'open').length
    const connected = (): number => strangers.filter((h) => c.libp2p.getConnections(h.peerId).length > 0).length
    // Every dial got through; those past the share closed older strangers to make room.
    await until(() => open() === 8 && connected() === 8, () => `strangers hold 8 places, no more (${open()} open, ${connected()} of 12 strangers)`)
    const reply = await served(strangers.at(-1)!, c)
    assert.ok(reply instanceof RefusedError && reply.code === 'ERR_NOT_ENROLLED', `the newest stranger is served: ${String(reply)}`)

    // The enrolled node gets in, and strangers that come after it replace strangers, not it.
    const client = new CoordinatorClient(node, address)
    await client.heartbeat({ type: 'heartbeat', status: 'idle' })
    const connection = c.libp2p.getConnections(node.peerId)[0]
    assert.ok(connection !== undefined, 'the enrolled node is connected')
    for (let i = 0; i < 4; i++) await (await host()).dial(address)
    await until(() => open() <= 9, () => `strangers still hold at most 8 places beside the node (${open()} open)`)
    await client.heartbeat({ type: 'heartbeat', status: 'idle' })
    assert.equal(c.libp2p.getConnections(node.peerId)[0]?.id, connection.id, 'the enrolled node kept its connection')
  })

  test('a stranger that does not enroll is closed after the limit; one that enrolls over its connection stays', async () => {
    // Long enough for the joining node's row to be written well before its deadline.
    const c = await start({ enrollWithinMs: 3_000 })
    const address = parseCoordinatorAddress(c.multiaddrs[0]!)
    const joining = await host()
    const client = new CoordinatorClient(joining, address)
    assert.ok(await served(joining, c) instanceof RefusedError, 'the joining node is connected, not yet enrolled')
    const connection = c.libp2p.getConnections(joining.peerId)[0]
    assert.ok(connection !== undefined)
    await enrol(c, joining.peerId.toString())
    const idle = await host()
    await idle.dial(address)
    await until(() => c.libp2p.getConnections(idle.peerId).length === 1, () => 'the idle stranger is connected')
    await until(() => c.libp2p.getConnections(idle.peerId).length === 0, () => 'the idle stranger was closed once it had not enrolled in time')
    // The joining node connected before the idle stranger, so its deadline has passed too.
    await client.heartbeat({ type: 'heartbeat', status: 'idle' })
    assert.equal(c.libp2p.getConnections(joining.peerId)[0]?.id, connection.id, 'the node that enrolled kept its connection')
  })
})

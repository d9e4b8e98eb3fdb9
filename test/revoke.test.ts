import { test } from 'vitest'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { BLOB_CHUNK_BYTES, JsonStream, REQUEST_TIMEOUT_MS, SWARM_PROTOCOL, loadOrCreatePeerKey, swarmResponseSchema } from '@barnraise/protocol'
import type { PeerBlockResponse, WorkUnit } from '@barnraise/protocol'
import { CoordinatorClient, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { startAgent, startCoordinator } from './support/cluster.ts'
import { askHave } from './support/peer-have.ts'
import { spawnCli } from './support/processes.ts'
import { sessionClient } from './support/session-client.ts'
import { tinyRunSpec, waitForRun } from './support/runs.ts'
import { allLedgerEntries } from './support/ledger-pages.ts'

test('a lab admin revokes a node: it is disconnected, turned away at the handshake, and cannot re-join', async () => {
  const coordinator = await startCoordinator()
  try {
    const admin = sessionClient(coordinator.url)
    await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'organizer', setupCode: coordinator.setupCode! })
    const lab = sessionClient(coordinator.url)
    await lab.auth.signUp.mutate({ email: 'lab@example.org', password: 'lab-password-1', displayName: 'Lab', role: 'lab_admin', organization: 'Revoke Lab' })
    const stranger = sessionClient(coordinator.url)
    await stranger.auth.signUp.mutate({ email: 'other@example.org', password: 'other-password', displayName: 'Other', role: 'lab_admin', organization: 'Other Lab' })

    const { token } = await lab.labs.createToken.mutate({ maxUses: 1 })
    const agent = await startAgent({ coordinator: coordinator.multiaddr, token, args: ['--no-train'] })
    const node = (await lab.nodes.list.query({})).find((n) => n.peerId === agent.peerId)!
    assert.equal(node.organizationName, 'Revoke Lab')

    await assert.rejects(stranger.nodes.revoke.mutate({ id: node.id }), /no such node/, 'another lab cannot revoke it')
    await lab.nodes.revoke.mutate({ id: node.id })
    const code = await Promise.race([agent.process.exited, new Promise((resolve) => setTimeout(() => { resolve('still running') }, 30_000))])
    assert.equal(code, 3, agent.output())
    assert.match(agent.output(), /refused \((ERR_NOT_ENROLLED|ERR_NODE_REVOKED|ERR_TURNED_AWAY)\)/)
    const after = (await lab.nodes.list.query({})).find((n) => n.peerId === agent.peerId)!
    assert.equal(after.revoked, true)
    assert.equal(after.online, false)
    const lastSeen = after.lastSeenAt

    // The node's own key, dialling as it would: the connection is closed before any protocol
    // is spoken, so the coordinator never reads a message from it (no refusal reply either).
    const { key } = await loadOrCreatePeerKey(join(agent.dataDir, 'peer.key'))
    const host = await createAgentHost(key)
    try {
      const client = new CoordinatorClient(host, parseCoordinatorAddress(coordinator.multiaddr))
      const attempt = await client.heartbeat({ type: 'heartbeat', status: 'idle' }).then(() => 'served', (err: unknown) => err)
      assert.notEqual(attempt, 'served')
      assert.ok(!(attempt instanceof RefusedError), `no protocol reply reached it: ${String(attempt)}`)
      assert.deepEqual(host.getConnections().filter((c) => c.status === 'open'), [], 'the coordinator closed the connection')
    } finally {
      await host.stop()
    }
    const still = (await lab.nodes.list.query({})).find((n) => n.peerId === agent.peerId)!
    assert.equal(still.lastSeenAt, lastSeen, 'nothing was written for the turned-away dial')
    assert.equal(still.online, false)

    // Restarting the agent on its data directory: turned away each time, it stops and says why.
    const again = spawnCli('node-agent/src/cli.ts', ['join', '--coordinator', coordinator.multiaddr, '--data-dir', agent.dataDir, '--no-train', '--heartbeat-interval', '1'])
    const againCode = await Promise.race([again.exited, new Promise((resolve) => setTimeout(() => { resolve('still running') }, 45_000))])
    await again.stop()
    assert.equal(againCode, 3, again.output())
    assert.match(again.output(), /refused \(ERR_TURNED_AWAY\).*revoked/, 'its key alone no longer gets it back in')
  } finally {
    await coordinator.stop()
  }
})

test('revoking a node that holds a unit expires it at once: the round closes without waiting for its deadline', async () => {
  const coordinator = await startCoordinator()
  try {
    const admin = sessionClient(coordinator.url)
    await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'organizer', setupCode: coordinator.setupCode! })
    const lab = sessionClient(coordinator.url)
    await lab.auth.signUp.mutate({ email: 'lab@example.org', password: 'lab-password-1', displayName: 'Lab', role: 'lab_admin', organization: 'Holding Lab' })
    const { token } = await lab.labs.createToken.mutate({ maxUses: 2 })
    // One machine trains; the other is online (heartbeats) but never asks for its unit.
    const worker = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'worker' })
    const holder = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'holder', args: ['--no-train'] })
    try {
      const run = await admin.runs.create.mutate({ spec: tinyRunSpec({ name: 'held run', rounds: 1, minNodes: 2, roundDeadlineSeconds: 3600 }), start: true })
      // The worker's report is in and the round still waits for the holder's unit.
      const deadline = Date.now() + 120_000
      for (;;) {
        const entries = await allLedgerEntries(admin, run.id)
        if (entries.some((e) => e.outcome === 'accepted' && e.peerId === worker.peerId)) break
        if (Date.now() > deadline) throw new Error('the worker never reported')
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
      assert.equal((await waitForRun(coordinator.url, run.id, () => true)).status, 'running', 'the round waits for the held unit')
      const node = (await lab.nodes.list.query({})).find((n) => n.peerId === holder.peerId)!
      await lab.nodes.revoke.mutate({ id: node.id })
      // Far inside the hour-long deadline: the expired unit no longer holds the round open.
      const done = await waitForRun(coordinator.url, run.id, (r) => r.status === 'completed', 60_000)
      assert.equal(done.round, 1)
      const entries = await allLedgerEntries(admin, run.id)
      assert.ok(!entries.some((e) => e.peerId === holder.peerId && e.outcome === 'accepted'), 'the revoked node earned nothing')
    } finally {
      await worker.stop()
      await holder.stop()
    }
  } finally {
    await coordinator.stop()
  }
})

/** Where the tracker says the peers holding `sha256` listen, by peer id (asked as `host`, which joins the blob's swarm). */
async function swarmPeers (host: Libp2p, coordinator: Multiaddr, sha256: string): Promise<Map<string, Multiaddr[]>> {
  const stream = await host.dialProtocol(coordinator, SWARM_PROTOCOL, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
  try {
    await messages.write({ type: 'swarm', sha256 })
    const answer = await messages.read(swarmResponseSchema, REQUEST_TIMEOUT_MS)
    if (!answer.ok || !('peers' in answer)) throw new Error(`the tracker refused: ${JSON.stringify(answer)}`)
    // The block digests follow: read, so the coordinator's write completes.
    for (let got = 0; got < answer.blockCount * 32;) got += (await messages.readFrame(REQUEST_TIMEOUT_MS)).byteLength
    return new Map(answer.peers.map((p) => [p.peerId, p.addrs.map((a) => multiaddr(a.endsWith(`/p2p/${p.peerId}`) ? a : `${a}/p2p/${p.peerId}`))]))
  } finally {
    await messages.close().catch(() => {})
  }
}

test('a revoked node is refused blob blocks by the agents that were serving it within a few heartbeats, not when their remembered yes runs out', async () => {
  const coordinator = await startCoordinator()
  const hosts: Libp2p[] = []
  try {
    const admin = sessionClient(coordinator.url)
    await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'organizer', setupCode: coordinator.setupCode! })
    const lab = sessionClient(coordinator.url)
    await lab.auth.signUp.mutate({ email: 'lab@example.org', password: 'lab-password-1', displayName: 'Lab', role: 'lab_admin', organization: 'Serving Lab' })
    const { token } = await lab.labs.createToken.mutate({ maxUses: 2 })
    // A: a real agent that trains, so it fetches the round's base and serves it to its peers.
    const holder = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'holder' })
    // B: a node driven from here, which takes a unit and then asks A for the base's blocks.
    const address = parseCoordinatorAddress(coordinator.multiaddr)
    const asker = await createAgentHost(await generateKeyPair('Ed25519'))
    hosts.push(asker)
    const client = new CoordinatorClient(asker, address)
    const hardware = { hostname: 'asker', platform: process.platform, arch: process.arch, cpuModel: 'test', cpuCores: 1, memoryBytes: 2 ** 30, gpus: [] }
    const enrolled = await client.enroll({ type: 'enroll', token, name: 'asker', agentVersion: '0.0.0-test', hardware })
    // Alive to the coordinator throughout, so its unit is not taken back before it is revoked.
    let beating = true
    const heartbeats = (async () => {
      while (beating) {
        await client.heartbeat({ type: 'heartbeat', status: 'idle' }).catch(() => {})
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
    })()
    try {
      // Two nodes per round and an hour to report: the round waits for B's unit, so A keeps its base.
      await admin.runs.create.mutate({ spec: tinyRunSpec({ name: 'served run', rounds: 1, minNodes: 2, roundDeadlineSeconds: 3600 }), start: true })
      let unit: WorkUnit | undefined
      for (const deadline = Date.now() + 120_000; unit === undefined;) {
        if (Date.now() > deadline) throw new Error(`B was never handed a unit${holder.output()}`)
        const reply = await client.requestWork()
        if (reply.kind === 'unit') unit = reply.unit
        else await new Promise((resolve) => setTimeout(resolve, 250))
      }
      const base = unit.baseCheckpoint

      // A holds the base and, asked by B, the coordinator vouched for B: A now remembers a yes
      // for B (a minute), which without word of the revocation it would keep serving.
      let first: PeerBlockResponse | undefined
      for (const deadline = Date.now() + 120_000; first?.ok !== true;) {
        if (Date.now() > deadline) throw new Error(`A never served B the base: ${JSON.stringify(first)}\n${holder.output()}`)
        const at = (await swarmPeers(asker, address, base).catch(() => new Map<string, Multiaddr[]>())).get(holder.peerId)
        first = at === undefined ? undefined : await askHave(asker, at, base).catch(() => undefined)
        if (first?.ok !== true) await new Promise((resolve) => setTimeout(resolve, 500))
      }
      const holderAddrs = (await swarmPeers(asker, address, base)).get(holder.peerId)!
      assert.equal((await askHave(asker, holderAddrs, base)).ok, true, 'served again on the remembered yes')

      await lab.nodes.revoke.mutate({ id: enrolled.nodeId })
      // A hears of it in a heartbeat reply (one a second here); a minute is what it would have waited.
      await holder.process.waitForLine(new RegExp(`the coordinator revoked peer ${asker.peerId.toString()}; this node serves it no more blocks`), 20_000)
      // It closed its connections to B (B's next ask dials again) ...
      for (const deadline = Date.now() + 10_000; asker.getConnections().some((c) => c.remotePeer.toString() === holder.peerId && c.status === 'open');) {
        if (Date.now() > deadline) throw new Error('A kept its connection to the revoked node open')
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      // ... and what it remembered of B is gone: it asks the coordinator again, which says no.
      let after: PeerBlockResponse
      for (;;) {
        after = await askHave(asker, holderAddrs, base)
        if (after.ok || after.code !== 'ERR_BUSY') break
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
      assert.ok(!after.ok, 'the revoked node is not served')
      assert.equal(after.code, 'ERR_NOT_HELD')
    } finally {
      beating = false
      await heartbeats
      await holder.stop()
    }
  } finally {
    for (const host of hosts) await host.stop()
    await coordinator.stop()
  }
})

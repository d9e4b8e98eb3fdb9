import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { Coordinator } from '@barnraise/coordinator'
import { BLOB_BLOCK_BYTES, JsonStream, PEER_BLOCKS_PROTOCOL, SWARM_PROTOCOL, encodeBitfield, peerBlockRequestSchema, swarmResponseSchema } from '@barnraise/protocol'
import type { SwarmResponse } from '@barnraise/protocol'
import { BlobCache, PeerExchange, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { tempDir } from './support/cluster.ts'
import { askHave } from './support/peer-have.ts'

// Peer exchange between real agent hosts on loopback: Bitswap between the agents, the
// coordinator's swarm protocol as the tracker and its blob protocol as the source of last resort.
describe('checkpoints and shards spread between the agents of a run', () => {
  let coordinator: Coordinator
  const hosts: Libp2p[] = []
  // Names stay unique within the lab (nodes.name_key) across tests, which empty `hosts`.
  let enrolled = 0
  const exchanges: PeerExchange[] = []
  // 6.5 blocks, so the last block is short.
  const blob = randomBytes(6 * BLOB_BLOCK_BYTES + BLOB_BLOCK_BYTES / 2)
  const sha = createHash('sha256').update(blob).digest('hex')
  let roundId: string
  let runId: string
  /** The agent that listens nowhere, from the relay test. */
  let behindRelay: Libp2p | undefined

  /** Records `host` as an enrolled node, with an open unit reading `sha` unless `unit` is false. */
  const enrol = async (host: Libp2p, name: string, unit = true): Promise<void> => {
    const db = coordinator.database.db
    const org = await db.selectFrom('organizations').select('id').executeTakeFirstOrThrow()
    const node = await db.insertInto('nodes').values({
      peer_id: host.peerId.toString(), organization_id: org.id, name, hardware: '{}', agent_version: '0',
      enrolled_with_token_id: null, first_seen_at: new Date(), last_seen_at: new Date()
    }).returning('id').executeTakeFirstOrThrow()
    if (unit) {
      await db.insertInto('assignments').values({
        run_id: runId, round_id: roundId, node_id: node.id, ranges: JSON.stringify([{ shard: sha, start: 0, end: 10 }]), tokens: 10, status: 'assigned'
      }).execute()
    }
  }

  /** Asks the swarm for `sha` as `host` would, retrying while the coordinator turns a burst of new connections away. */
  const askSwarmAs = async (host: Libp2p): Promise<SwarmResponse> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const stream = await host.dialProtocol(parseCoordinatorAddress(coordinator.multiaddrs[0]!), SWARM_PROTOCOL)
        const messages = new JsonStream(stream, 256 * 1024)
        await messages.write({ type: 'swarm', sha256: sha })
        const answer = await messages.read(swarmResponseSchema, 10_000)
        await messages.close()
        return answer
      } catch (err) {
        if (attempt >= 10) throw err
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
    }
  }

  /** An agent host on loopback with peer exchange, enrolled, with an open unit reading `sha`. */
  const agent = async (o: { unit?: boolean, stallMs?: number, blockTimeoutMs?: number, log?: (message: string) => void, listen?: string[], relayed?: boolean } = {}): Promise<{ libp2p: Libp2p, peers: PeerExchange, cache: BlobCache }> => {
    const libp2p = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: o.listen ?? ['/ip4/127.0.0.1/tcp/0'], relayed: o.relayed ?? false })
    hosts.push(libp2p)
    const address = parseCoordinatorAddress(coordinator.multiaddrs[0]!)
    const peers = await PeerExchange.start(libp2p, address, { stallMs: o.stallMs ?? 5_000, blockTimeoutMs: o.blockTimeoutMs, log: o.log })
    exchanges.push(peers)
    await enrol(libp2p, `peer ${++enrolled}`, o.unit !== false)
    return { libp2p, peers, cache: new BlobCache(await tempDir('peer-agent'), libp2p, address, { peers }) }
  }

  beforeAll(async () => {
    // Every agent here dials from 127.0.0.1, several within a second: the per-address rate a
    // public coordinator keeps (5 new connections a second) reset some of them at random.
    coordinator = await Coordinator.start({ dataDir: await tempDir('peer-coord'), httpPort: 0, p2pPort: 0, metrics: true, peerLimits: { inboundConnectionThreshold: 1000 } })
    const db = coordinator.database.db
    const stored = await coordinator.blobs.put(blob)
    await db.insertInto('blobs').values({ sha256: stored, size: blob.byteLength, kind: 'shard', meta: '{}' }).execute()
    await db.insertInto('organizations').values({ name: 'Peer Lab' }).execute()
    const run = await db.insertInto('runs').values({ name: 'peer run', spec: '{}', failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null })
      .returning('id').executeTakeFirstOrThrow()
    runId = run.id
    const round = await db.insertInto('rounds').values({ run_id: run.id, number: 1, status: 'open', base_checkpoint: '0'.repeat(64), deadline_at: new Date(Date.now() + 600_000) })
      .returning('id').executeTakeFirstOrThrow()
    roundId = round.id
  })
  afterAll(async () => {
    for (const e of exchanges) await e.stop().catch(() => {})
    for (const h of hosts) await h.stop()
    await coordinator.stop()
  })

  test('four agents fetching at once take about one copy from the coordinator and the rest from each other; a late joiner takes none', async () => {
    const four = await Promise.all([agent(), agent(), agent(), agent()])
    const got = await Promise.all(four.map(async (a) => await a.cache.get(sha)))
    for (const bytes of got) assert.ok(Buffer.from(bytes).equals(blob), 'every agent holds the verified blob')
    const fromCoordinator = four.reduce((n, a) => n + a.peers.stats.fromCoordinator, 0)
    const fromPeers = four.reduce((n, a) => n + a.peers.stats.fromPeers, 0)
    assert.equal(fromCoordinator + fromPeers, 4 * blob.byteLength, 'each block landed once per agent')
    assert.ok(fromCoordinator <= 1.5 * blob.byteLength, `coordinator egress ${(fromCoordinator / blob.byteLength).toFixed(2)}× the blob`)
    assert.ok(fromPeers >= 2.5 * blob.byteLength, `peers gave ${(fromPeers / blob.byteLength).toFixed(2)}× the blob`)

    const late = await agent()
    assert.ok(Buffer.from(await late.cache.get(sha)).equals(blob))
    assert.equal(late.peers.stats.fromCoordinator, 0, 'a late joiner takes every block from its peers')
    assert.equal(late.peers.stats.fromPeers, blob.byteLength)
  })

  test('a node that made the blob itself (a rebuilt base) tells the tracker, and a later asker takes every block from it', async () => {
    for (const e of exchanges.splice(0)) await e.stop()
    for (const h of hosts.splice(0)) await h.stop()
    const maker = await agent()
    await maker.cache.put(sha, blob)
    assert.equal(maker.peers.stats.fromCoordinator + maker.peers.stats.fromPeers, 0, 'the maker fetched nothing')
    const asker = await agent()
    assert.ok(Buffer.from(await asker.cache.get(sha)).equals(blob))
    assert.deepEqual(asker.peers.stats, { fromPeers: blob.byteLength, fromCoordinator: 0 }, 'every block came from the node that made it')
  })

  test('a member that never delivers its share is routed around: after the stall the coordinator gives the rest', async () => {
    // A node that asks the swarm for a share and then never serves it (it runs no block server).
    const silent = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
    hosts.push(silent)
    await enrol(silent, 'silent')
    // Every earlier agent leaves, so the silent member is the only one offered.
    for (const e of exchanges.splice(0)) await e.stop()
    for (const h of hosts.filter((h) => h !== silent).splice(0)) await h.stop()
    const answer = await askSwarmAs(silent)
    assert.ok(answer.ok && 'seed' in answer)
    const share = answer.seed.reduce((n, r) => n + r.to - r.from, 0)
    assert.ok(share > 0 && share < 7, `the silent member was given ${share} of 7 blocks`)

    const patient = await agent({ stallMs: 1_000 })
    assert.ok(Buffer.from(await patient.cache.get(sha)).equals(blob), 'the blob arrived whole and verified')
    assert.equal(patient.peers.stats.fromCoordinator, blob.byteLength)
  })

  test('a peer that sends bytes that are not the block is dropped, and nothing it sent is kept', async () => {
    // A swarm member that claims every block and answers each request with random bytes.
    const liar = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
    hosts.push(liar)
    let lies = 0
    await liar.handle(PEER_BLOCKS_PROTOCOL, async (stream) => {
      const messages = new JsonStream(stream, 256 * 1024)
      const request = await messages.read(peerBlockRequestSchema, 10_000)
      const have = encodeBitfield(new Uint8Array(7).fill(1))
      if (request.type === 'have') {
        await messages.write({ ok: true, have })
      } else {
        lies++
        const length = request.index === 6 ? BLOB_BLOCK_BYTES / 2 : BLOB_BLOCK_BYTES
        await messages.write({ ok: true, have, bytes: length })
        const lie = randomBytes(length)
        for (let i = 0; i < length; i += 256 * 1024) await messages.writeFrame(lie.subarray(i, i + 256 * 1024))
      }
      await messages.close()
    })
    await enrol(liar, 'liar')
    for (const e of exchanges.splice(0)) await e.stop()
    for (const h of hosts) if (h !== liar) await h.stop()
    const asked = await askSwarmAs(liar)
    assert.ok(asked.ok)

    const honest = await agent({ stallMs: 1_000 })
    assert.ok(Buffer.from(await honest.cache.get(sha)).equals(blob), 'the blob arrived whole and verified')
    assert.ok(lies >= 1, 'the liar was asked')
    assert.equal(honest.peers.stats.fromPeers, 0, 'nothing from the liar was kept')
    assert.equal(honest.peers.stats.fromCoordinator, blob.byteLength)
  })

  test('a peer that accepts every block and trickles it is cut off at the block deadline, and once it has stalled the fetch it holds the rest back no longer than the stall', async () => {
    // A swarm member that claims every block and sends each a few bytes at a time, never the whole.
    const trickler = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
    hosts.push(trickler)
    let asked = 0
    await trickler.handle(PEER_BLOCKS_PROTOCOL, async (stream) => {
      const messages = new JsonStream(stream, 256 * 1024)
      const request = await messages.read(peerBlockRequestSchema, 10_000)
      const have = encodeBitfield(new Uint8Array(7).fill(1))
      if (request.type === 'have') {
        await messages.write({ ok: true, have })
        await messages.close()
        return
      }
      asked++
      await messages.write({ ok: true, have, bytes: request.index === 6 ? BLOB_BLOCK_BYTES / 2 : BLOB_BLOCK_BYTES })
      try {
        for (let i = 0; i < 600; i++) {
          await messages.writeFrame(randomBytes(16))
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      } catch {
        // The asker cut the stream: what this test expects.
      }
    })
    await enrol(trickler, 'trickler')
    for (const e of exchanges.splice(0)) await e.stop()
    for (const h of hosts) if (h !== trickler) await h.stop()
    assert.ok((await askSwarmAs(trickler)).ok)

    const logged: string[] = []
    const honest = await agent({ stallMs: 300, blockTimeoutMs: 3_000, log: (message) => { logged.push(message) } })
    assert.ok(Buffer.from(await honest.cache.get(sha)).equals(blob), 'the blob arrived whole and verified')
    assert.ok(asked >= 1, 'the trickler was asked')
    assert.ok(logged.includes('a peer failed to deliver a block'), `a trickled block ended at its deadline: ${logged.join('; ')}`)
    const again = logged.indexOf('peers stalled again; taking the rest from the coordinator')
    assert.ok(again > 0, logged.join('; '))
    // Its first two blocks ran out their deadline before the first stall; the two asked next were
    // still trickling when the rest came from the coordinator, a stall (not a deadline) later.
    assert.equal(logged.slice(0, again).filter((m) => m === 'a peer failed to deliver a block').length, 2, logged.join('; '))
    assert.equal(honest.peers.stats.fromPeers, 0, 'nothing the trickler sent was kept')
    assert.equal(honest.peers.stats.fromCoordinator, blob.byteLength)
  })

  test('an agent that can only dial out still serves its blocks: its peers reach it through the coordinator\'s relay', async () => {
    for (const e of exchanges.splice(0)) await e.stop()
    for (const h of hosts) await h.stop()
    // Listens nowhere, as behind NAT: its only address is a slot on the coordinator's relay.
    const natted = await agent({ listen: [], relayed: true })
    behindRelay = natted.libp2p
    assert.ok(Buffer.from(await natted.cache.get(sha)).equals(blob))
    for (let i = 0; i < 100 && !natted.libp2p.getMultiaddrs().some((a) => a.toString().includes('/p2p-circuit')); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    assert.ok(natted.libp2p.getMultiaddrs().every((a) => a.toString().includes('/p2p-circuit')), 'its only addresses are relayed')
    // identify push tells the coordinator of the new address a moment after the slot is granted.
    const known = async (): Promise<boolean> => (await coordinator.libp2p.peerStore.get(natted.libp2p.peerId)).addresses.some((a) => a.multiaddr.toString().includes('/p2p-circuit'))
    for (let i = 0; i < 100 && !await known(); i++) await new Promise((resolve) => setTimeout(resolve, 100))
    assert.ok(await known(), 'the coordinator learned the relayed address')
    const other = await agent({ relayed: true })
    assert.ok(Buffer.from(await other.cache.get(sha)).equals(blob))
    assert.equal(other.peers.stats.fromPeers, blob.byteLength, 'every block came from the agent behind the relay')
    const links = other.libp2p.getConnections(natted.libp2p.peerId)
    assert.ok(links.length > 0 && links.every((c) => c.limits !== undefined && c.remoteAddr.toString().includes('/p2p-circuit')), 'over a relayed connection')
    // What the relay carried is the coordinator's egress too: operators see it per relay protocol.
    const text = await (await fetch(new URL('metrics', coordinator.url))).text()
    const relayed = /^libp2p_data_transfer_bytes_total\{protocol="\/libp2p\/circuit\/relay\/0\.2\.0\/hop sent"\} (\d+)$/m.exec(text)
    assert.ok(relayed !== null && Number(relayed[1]) >= blob.byteLength, `relayed bytes in /metrics: ${relayed?.[0] ?? 'none'}`)
  })

  test('the relay carries nothing to or from a node that is not enrolled', async () => {
    assert.ok(behindRelay !== undefined, 'the agent behind the relay from the test before is still up')
    const circuit = behindRelay.getMultiaddrs().find((a) => a.toString().includes('/p2p-circuit'))!
    const stranger = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: [], relayed: true })
    hosts.push(stranger)
    await assert.rejects(stranger.dialProtocol(circuit, PEER_BLOCKS_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) }), 'a stranger is not relayed to an enrolled node')
  })

  test('the swarm answers only an enrolled node whose own unit names the blob', async () => {
    const stranger = await createAgentHost(await generateKeyPair('Ed25519'))
    hosts.push(stranger)
    const address = parseCoordinatorAddress(coordinator.multiaddrs[0]!)
    const strangerPeers = await PeerExchange.start(stranger, address)
    exchanges.push(strangerPeers)
    await assert.rejects(strangerPeers.fetch(sha, `${await tempDir('peer-stranger')}/x`), (err: unknown) => err instanceof RefusedError && err.code === 'ERR_NOT_ENROLLED')
    const idle = await agent({ unit: false })
    await assert.rejects(idle.cache.get(sha), (err: unknown) => err instanceof RefusedError && err.code === 'ERR_NOT_ASSIGNED')
    await assert.rejects(idle.cache.get('1'.repeat(64)), (err: unknown) => err instanceof RefusedError && err.code === 'ERR_NOT_ASSIGNED')
  })

  test('a holder serves blocks only to a peer the coordinator says may have the blob: its sha256 is public', async () => {
    const holder = await agent()
    assert.ok(Buffer.from(await holder.cache.get(sha)).equals(blob))
    const have = async (asker: Libp2p): Promise<{ ok: boolean, code?: string }> => await askHave(asker, holder.libp2p.getMultiaddrs()[0]!, sha)
    // Enrolled, but no unit of its own names the blob (a run's spec lists its shards for anyone).
    const idle = await agent({ unit: false })
    assert.deepEqual(await have(idle.libp2p), { ok: false, code: 'ERR_NOT_HELD', message: 'this agent does not hold that blob' })
    const member = await agent()
    const answer = await have(member.libp2p)
    assert.equal(answer.ok, true, 'a node whose unit names it is served')
  })
})

import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { JsonStream, SWARM_PROTOCOL, swarmResponseSchema } from '@barnraise/protocol'
import type { SwarmPeer } from '@barnraise/protocol'
import { Coordinator } from '../coordinator.ts'

// A real coordinator (embedded PGlite) and real libp2p hosts on loopback, each recorded as an
// enrolled node whose open unit reads one shard.
let coordinator: Coordinator
const hosts: Libp2p[] = []
const blob = randomBytes(3 * 1024 * 1024)
const sha = createHash('sha256').update(blob).digest('hex')
/** Each coordinator's run and open round, which every node's unit belongs to. */
const rounds = new Map<Coordinator, { runId: string, roundId: string }>()

/** A coordinator holding the shard, with an organization and a run whose round 1 is open. */
const start = async (options: Partial<Parameters<typeof Coordinator.start>[0]> = {}): Promise<Coordinator> => {
  const c = await Coordinator.start({ dataDir: await mkdtemp(join(tmpdir(), 'barnraise-swarm-service-')), httpPort: 0, p2pPort: 0, peerLimits: { inboundConnectionThreshold: 1000 }, ...options })
  const db = c.database.db
  await c.blobs.put(blob)
  await db.insertInto('blobs').values({ sha256: sha, size: blob.byteLength, kind: 'shard', meta: '{}' }).execute()
  await db.insertInto('organizations').values({ name: 'Swarm Lab' }).execute()
  const run = await db.insertInto('runs').values({ name: 'swarm run', spec: '{}', failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null })
    .returning('id').executeTakeFirstOrThrow()
  const round = await db.insertInto('rounds').values({ run_id: run.id, number: 1, status: 'open', base_checkpoint: '0'.repeat(64), deadline_at: new Date(Date.now() + 600_000) })
    .returning('id').executeTakeFirstOrThrow()
  rounds.set(c, { runId: run.id, roundId: round.id })
  return c
}

beforeAll(async () => {
  coordinator = await start()
}, 120_000)
afterAll(async () => {
  for (const h of hosts) await h.stop()
  for (const c of rounds.keys()) await c.stop()
})

/** A host that announces `announce` (identify) as its listen addresses, enrolled at `c` with a unit reading the shard. */
const node = async (name: string, announce: string[], c = coordinator): Promise<Libp2p> => {
  const h = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'], announce },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  hosts.push(h)
  const db = c.database.db
  const org = await db.selectFrom('organizations').select('id').executeTakeFirstOrThrow()
  const row = await db.insertInto('nodes').values({
    peer_id: h.peerId.toString(), organization_id: org.id, name, hardware: '{}', agent_version: '0',
    enrolled_with_token_id: null, first_seen_at: new Date(), last_seen_at: new Date()
  }).returning('id').executeTakeFirstOrThrow()
  const { runId, roundId } = rounds.get(c)!
  await db.insertInto('assignments').values({
    run_id: runId, round_id: roundId, node_id: row.id, ranges: JSON.stringify([{ shard: sha, start: 0, end: 10 }]), tokens: 10, status: 'assigned'
  }).execute()
  return h
}

/** Asks `c`'s swarm (at `at`, by default its first address) for the shard as `h`; returns the peers offered. */
const ask = async (h: Libp2p, c = coordinator, at = c.multiaddrs[0]!): Promise<SwarmPeer[]> => {
  const messages = new JsonStream(await h.dialProtocol(multiaddr(at), SWARM_PROTOCOL), 256 * 1024)
  await messages.write({ type: 'swarm', sha256: sha })
  const answer = await messages.read(swarmResponseSchema, 10_000)
  await messages.close()
  assert.ok(answer.ok && 'peers' in answer, JSON.stringify(answer))
  return answer.peers
}

test('a member is offered only at its own host and at this coordinator\'s relay, never where its announced relay addresses point', async () => {
  const coordinatorId = coordinator.libp2p.peerId.toString()
  const ownRelay = `${coordinator.multiaddrs[0]!}/p2p-circuit`
  // A relay address names the relay's peer id, and agents dial what comes before it: a node that
  // puts someone else's host there would aim every other agent of the run at it (a DNS name may
  // resolve to a volunteer's router or 169.254.169.254, and agents dial a relay's name).
  const foreign = [
    `/dns4/victim.example/tcp/443/p2p/${coordinatorId}/p2p-circuit`,
    `/ip4/198.51.100.7/tcp/22/p2p/${coordinatorId}/p2p-circuit`
  ]
  const hostile = await node('hostile', ['/ip4/127.0.0.1/tcp/4101', ownRelay, ...foreign])
  await ask(hostile)
  const asker = await node('asker', ['/ip4/127.0.0.1/tcp/4102'])

  let offered: SwarmPeer | undefined
  for (let i = 0; i < 100 && offered === undefined; i++) {
    offered = (await ask(asker)).find((p) => p.peerId === hostile.peerId.toString())
    if (offered === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.ok(offered !== undefined, 'the member is offered once the coordinator has identified it')
  assert.deepEqual(offered.addrs.filter((a) => a.includes('/p2p-circuit')), [ownRelay], 'only the slot on this coordinator\'s relay')
  assert.deepEqual(offered.addrs.filter((a) => !a.includes('/p2p-circuit')), ['/ip4/127.0.0.1/tcp/4101'], 'and its address on the host its connection comes from')

  // Behind a port forward agents reach the relay at an address it does not listen on; an asker
  // whose own slot is there (it dialled the coordinator there) is offered members' slots there too.
  const forwarded = await node('forwarded asker', ['/ip4/127.0.0.1/tcp/4103', foreign[1]!])
  let seen: SwarmPeer | undefined
  for (let i = 0; i < 100 && seen?.addrs.includes(foreign[1]!) !== true; i++) {
    seen = (await ask(forwarded)).find((p) => p.peerId === hostile.peerId.toString())
    if (seen?.addrs.includes(foreign[1]!) !== true) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.deepEqual(seen?.addrs.filter((a) => a.includes('/p2p-circuit')).sort(), [ownRelay, foreign[1]!].sort(), 'the asker\'s own way to the relay, never the name it did not use')
})

test('a coordinator started with --announce offers members\' slots at the announced address to every asker, and names it in its own addresses', async () => {
  // The port is only known once bound elsewhere; the announced DNS name is what agents behind the cloud's NAT dial.
  const free = createServer()
  await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve))
  const port = (free.address() as AddressInfo).port
  await new Promise((resolve) => free.close(resolve))
  const announced = '/dns4/coordinator.example/tcp/4001'
  const c = await start({ p2pPort: port, announce: [announced, `/ip4/127.0.0.1/tcp/${port}`] })
  const id = c.libp2p.peerId.toString()
  assert.deepEqual([...c.multiaddrs].sort(), [`${announced}/p2p/${id}`, `/ip4/127.0.0.1/tcp/${port}/p2p/${id}`].sort(), 'the announced addresses replace the listen address')
  const at = `/ip4/127.0.0.1/tcp/${port}/p2p/${id}`
  const slot = `${announced}/p2p/${id}/p2p-circuit`
  const behindNat = await node('behind NAT', [slot], c)
  await ask(behindNat, c, at)
  // An asker with no slot of its own: before --announce it was offered no way to a member behind NAT.
  const asker = await node('public asker', ['/ip4/127.0.0.1/tcp/4104'], c)
  let offered: SwarmPeer | undefined
  for (let i = 0; i < 100 && offered === undefined; i++) {
    offered = (await ask(asker, c, at)).find((p) => p.peerId === behindNat.peerId.toString())
    if (offered === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.deepEqual(offered?.addrs, [slot])
})

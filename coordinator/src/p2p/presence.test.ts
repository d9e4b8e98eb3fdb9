import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { createCoordinatorHost } from './host.ts'
import { DEFAULT_PEER_LIMITS } from './peer-limits.ts'
import { LIVENESS_MS, Presence } from './presence.ts'

// Two real hosts on loopback: the coordinator's, which Presence watches, and a node's.
let coordinator: Libp2p
let node: Libp2p
let presence: Presence

const host = async (): Promise<Libp2p> => await createCoordinatorHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], limits: DEFAULT_PEER_LIMITS, isRevoked: async () => false })
const until = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 25))
  assert.ok(condition())
}

beforeAll(async () => {
  coordinator = await host()
  node = await host()
  presence = new Presence(coordinator)
}, 60_000)
afterAll(async () => {
  await node?.stop()
  await coordinator?.stop()
})

test('a connection alone is online but not live; enrolling, heartbeating or asking for work makes a node live for LIVENESS_MS', async () => {
  const peer = node.peerId.toString()
  await node.dial(coordinator.getMultiaddrs()[0]!)
  await until(() => presence.isOnline(peer))
  assert.equal(presence.isLive(peer), false, 'connected, and never said a word')

  presence.joined(peer)
  const enrolled = Date.now()
  assert.equal(presence.isLive(peer), true)
  assert.equal(presence.isLive(peer, enrolled + LIVENESS_MS + 1000), false, 'silent since it enrolled')

  presence.heartbeat(peer, 'training')
  assert.equal(presence.isLive(peer), true)
  assert.equal(presence.get(peer)?.status, 'training')
  presence.askedForWork(peer)
  assert.equal(presence.isLive(peer, Date.now() + LIVENESS_MS - 1000), true)
  assert.equal(presence.get(peer)?.status, 'training', 'asking for work leaves its status as its heartbeat said')
  // The executor its latest work request names (node-scoring.ts picks scorers by it); heartbeats keep it.
  assert.equal(presence.executorOf(peer), undefined)
  presence.askedForWork(peer, 'torch-cuda')
  presence.heartbeat(peer, 'training')
  assert.equal(presence.executorOf(peer), 'torch-cuda')
  presence.askedForWork(peer)
  assert.equal(presence.executorOf(peer), undefined, 'a request naming none (an older agent) names none')
  presence.askedForWork(peer, 'torch-cpu')

  // Gone: not live, and coming back with a bare connection is not enough either.
  await node.hangUp(coordinator.peerId)
  await until(() => presence.get(peer) === undefined)
  assert.equal(presence.isLive(peer), false)
  assert.equal(presence.executorOf(peer), undefined, 'forgotten with the connection')
  await node.dial(coordinator.getMultiaddrs()[0]!)
  await until(() => presence.isOnline(peer))
  assert.equal(presence.isLive(peer), false)
  // A work request is a node at work: live (and present) again.
  presence.askedForWork(peer)
  assert.equal(presence.isLive(peer), true)
  assert.equal(presence.onlineCount(), 1)
})

test('a heartbeat or work request answered after its peer left does not list it again; livePeers names only live peers', async () => {
  const peer = node.peerId.toString()
  await node.dial(coordinator.getMultiaddrs()[0]!)
  await until(() => presence.isOnline(peer))
  presence.askedForWork(peer)
  assert.deepEqual(presence.livePeers(), [peer])
  assert.deepEqual(presence.livePeers(Date.now() + LIVENESS_MS + 1000), [], 'silent for longer than LIVENESS_MS')
  await node.hangUp(coordinator.peerId)
  await until(() => presence.get(peer) === undefined)
  let changes = 0
  const unsubscribe = presence.onChange(() => { changes++ })
  // What the heartbeat and work services call once their database query returns.
  presence.heartbeat(peer, 'training')
  presence.askedForWork(peer, 'torch-cuda')
  unsubscribe()
  assert.equal(presence.get(peer), undefined, 'not listed again')
  assert.equal(presence.executorOf(peer), undefined)
  assert.equal(presence.onlineCount(), 0)
  assert.deepEqual(presence.livePeers(), [])
  assert.equal(changes, 0, 'nobody was told of a change')
})

import { afterAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { createCoordinatorHost } from './host.ts'
import { DEFAULT_PEER_LIMITS } from './peer-limits.ts'

const hosts: Libp2p[] = []
afterAll(async () => {
  for (const h of hosts.reverse()) await h.stop()
})

const until = async (condition: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 300 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  assert.ok(condition(), what)
}

/** A peer that asks the relay for a slot, as an agent with peer exchange does (node-agent/src/host.ts). */
const relayClient = async (): Promise<Libp2p> => {
  const h = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/p2p-circuit'] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), identifyPush: identifyPush() }
  })
  hosts.push(h)
  return h
}

const hasSlot = (h: Libp2p): boolean => h.getMultiaddrs().some((a) => a.toString().includes('/p2p-circuit'))

test('a slot on the relay ends with its peer\'s connection: strangers that reserve and leave cannot fill the relay for enrolled nodes', async () => {
  // maxReservations follows maxConnections; two keep the test small.
  const coordinator = await createCoordinatorHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    limits: { ...DEFAULT_PEER_LIMITS, maxConnections: 2 },
    isRevoked: async () => false,
    isEnrolled: async () => true
  })
  hosts.push(coordinator)
  const relay = (coordinator.services as { relay?: CircuitRelayService }).relay
  assert.ok(relay !== undefined, 'the host is a relay')
  const address = coordinator.getMultiaddrs()[0]!

  // Fresh peer ids cost nothing: each takes a slot, then hangs up.
  for (let i = 0; i < 2; i++) {
    const stranger = await relayClient()
    await stranger.dial(address)
    await until(() => hasSlot(stranger), 'the stranger got a slot')
    await stranger.stop()
  }
  await until(() => relay.reservations.size === 0, `slots of peers that left are freed (${relay.reservations.size} still held)`)

  const node = await relayClient()
  await node.dial(address)
  await until(() => hasSlot(node), 'a node that comes later still gets a slot')
  assert.equal(relay.reservations.size, 1)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { createAgentHost } from '../host.ts'
import { mayDial } from './peer-exchange.ts'

const COORDINATOR_ID = '12D3KooWEWXz7ZuaQ9Htu9StqF8izXBy1KaKsCYdHQpnEKG1Qiap'

test('a peer cannot aim the agent\'s dials at the volunteer\'s network through the addresses it announces (identify, hole punching)', async () => {
  // The "router" on the volunteer's network: it only counts who connects.
  let reached = 0
  const victim = createServer((socket) => { reached++; socket.destroy() })
  await new Promise<void>((resolve) => { victim.listen(0, '127.0.0.1', resolve) })
  const port = (victim.address() as AddressInfo).port
  // A coordinator on the public internet: its tracker's word is filtered, and so must be a peer's.
  const coordinator = multiaddr(`/ip4/203.0.113.10/tcp/4001/p2p/${COORDINATOR_ID}`)
  const agent = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'], coordinator })
  // A hostile peer of the run: identify carries whatever listen addresses it claims.
  const hostile = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'], announce: [`/ip4/127.0.0.1/tcp/${port}`, `/dns4/localhost/tcp/${port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  try {
    await hostile.dial(agent.getMultiaddrs()[0]!)
    for (let i = 0; i < 200; i++) {
      const known = await agent.peerStore.get(hostile.peerId).catch(() => undefined)
      if ((known?.addresses.length ?? 0) >= 2) break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    assert.deepEqual((await agent.peerStore.get(hostile.peerId)).addresses.map((a) => a.multiaddr.toString()).sort(), [`/dns4/localhost/tcp/${port}`, `/ip4/127.0.0.1/tcp/${port}`], 'the agent learned the announced addresses')
    await hostile.hangUp(agent.peerId)
    for (let i = 0; i < 200 && agent.getConnections(hostile.peerId).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.equal(agent.getConnections(hostile.peerId).length, 0)
    // Asked again later (an unnamed peer in peer-exchange.ts is dialled by its id), the agent
    // must not go to the addresses the peer claimed.
    await assert.rejects(agent.dial(hostile.peerId, { signal: AbortSignal.timeout(5_000) }))
    assert.equal(reached, 0, 'the agent connected to a loopback service a peer named')
  } finally {
    await hostile.stop()
    await agent.stop()
    await new Promise((resolve) => victim.close(resolve))
  }
})

test('what the agent dials: the coordinator\'s own host, public addresses, relay circuits; never a private address or a DNS name a peer named', async () => {
  const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const coordinator = multiaddr(`/dns4/coordinator.example.org/tcp/4001/p2p/${COORDINATOR_ID}`)
  const allowed = (text: string): boolean => mayDial(multiaddr(text), coordinator)
  assert.ok(allowed(`/dns4/coordinator.example.org/tcp/4001/p2p/${COORDINATOR_ID}`), 'the coordinator, by the name it was given')
  assert.ok(allowed(`/dns4/Coordinator.Example.ORG/tcp/4001/p2p/${COORDINATOR_ID}/p2p-circuit/p2p/${peer}`), 'its relay')
  assert.ok(allowed(`/ip4/198.51.100.4/tcp/4001/p2p/${COORDINATOR_ID}/p2p-circuit/p2p/${peer}`), 'a relay at a public address')
  assert.ok(allowed('/ip4/198.51.100.4/tcp/4001'))
  for (const bad of ['/ip4/127.0.0.1/tcp/22', '/ip4/169.254.169.254/tcp/80', '/ip4/192.168.1.1/tcp/80', '/ip6/::1/tcp/4001', '/ip6/::ffff:10.0.0.1/tcp/1', '/dns4/router.lan/tcp/80', '/dns4/localhost/tcp/80', '/dns6/metadata.google.internal/tcp/80']) {
    assert.equal(allowed(bad), false, bad)
  }
  // A coordinator on a private or loopback address (a lab's network, a test): its peers are there too.
  const lab = multiaddr(`/ip4/10.0.0.5/tcp/4001/p2p/${COORDINATOR_ID}`)
  assert.ok(mayDial(multiaddr('/ip4/10.0.0.7/tcp/4002'), lab))
  assert.ok(mayDial(multiaddr('/dns4/peer.lab.internal/tcp/4002'), lab))
})

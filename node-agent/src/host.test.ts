import { afterAll, test } from 'vitest'
import assert from 'node:assert/strict'
import net from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { AGENT_HANDSHAKES_PER_ADDRESS, createAgentHost } from './host.ts'

const hosts: Libp2p[] = []
const sockets: net.Socket[] = []
afterAll(async () => {
  for (const s of sockets) s.destroy()
  for (const h of hosts) await h.stop()
})

test('connections that stall in the handshake from one address hold only that address\'s share; a peer elsewhere still connects', async () => {
  const listener = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
  hosts.push(listener)
  const address = listener.getMultiaddrs()[0]!
  const port = Number(address.getComponents().find((c) => c.name === 'tcp')!.value)
  // Raw sockets that never speak, all at once from one loopback address (the rate allows 64 a second).
  const open = new Set<net.Socket>()
  for (let i = 0; i < 24; i++) {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' })
    sockets.push(s)
    open.add(s)
    s.on('error', () => {})
    s.on('close', () => { open.delete(s) })
  }
  for (let i = 0; i < 200 && open.size > AGENT_HANDSHAKES_PER_ADDRESS; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(open.size, AGENT_HANDSHAKES_PER_ADDRESS, 'the sockets past the address\'s share were closed; its share is still held')

  const peer = await createAgentHost(await generateKeyPair('Ed25519'))
  hosts.push(peer)
  await peer.dial(address)
  // The dialer is through its handshake a moment before the listener is.
  for (let i = 0; i < 200 && listener.getConnections(peer.peerId).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(listener.getConnections(peer.peerId).length, 1, 'a peer from another address got in')
})

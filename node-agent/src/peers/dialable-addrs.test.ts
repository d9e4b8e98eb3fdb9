import { test } from 'vitest'
import assert from 'node:assert/strict'
import { dialableAddrs } from './peer-exchange.ts'

const relay = '/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWEWXz7ZuaQ9Htu9StqF8izXBy1KaKsCYdHQpnEKG1Qiap/p2p-circuit'

test('a public coordinator\'s tracker cannot point the agent at its own network: private, loopback and link-local addresses are not dialled', () => {
  const named = ['/ip4/198.51.100.4/tcp/4001', '/ip4/127.0.0.1/tcp/22', '/ip4/169.254.169.254/tcp/80', '/ip4/192.168.1.1/tcp/80', '/ip6/::1/tcp/4001', '/ip4/10.0.0.1/tcp/4001', relay]
  assert.deepEqual(dialableAddrs(named, false), ['/ip4/198.51.100.4/tcp/4001', relay])
  // A coordinator on a private or loopback address (a lab network, a test) may name peers there.
  assert.deepEqual(dialableAddrs(named, true), named)
  // Nothing but ip/dns over tcp, or a relay circuit; nothing that does not parse.
  assert.deepEqual(dialableAddrs(['/ip4/198.51.100.4/udp/4001/quic-v1', '/unix/tmp/x.sock', 'not an address', '/ip4/198.51.100.4/tcp/4001'], false), ['/ip4/198.51.100.4/tcp/4001'])
  // A name could resolve to the volunteer's network: only a relay circuit (the coordinator's own name) may be one.
  const namedRelay = '/dns4/coordinator.example.org/tcp/4001/p2p/12D3KooWEWXz7ZuaQ9Htu9StqF8izXBy1KaKsCYdHQpnEKG1Qiap/p2p-circuit'
  assert.deepEqual(dialableAddrs(['/dns4/peer.example.org/tcp/4001', namedRelay], false), [namedRelay])
})

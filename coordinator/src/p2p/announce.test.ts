import { test } from 'vitest'
import assert from 'node:assert/strict'
import { checkAnnounceAddress } from './announce.ts'

test('an announce address is a host and a TCP port; anything else says what is wrong', () => {
  for (const good of ['/ip4/203.0.113.5/tcp/4001', '/dns4/coordinator.example.org/tcp/4001', '/ip6/2001:db8::1/tcp/4001', '/dns/coordinator.example.org/tcp/443']) {
    assert.deepEqual(checkAnnounceAddress(good), { ok: true, address: good })
  }
  const bad: Array<[string, RegExp]> = [
    ['203.0.113.5:4001', /is not a multiaddr/],
    ['/ip4/203.0.113.5', /must be a host and a TCP port/],
    ['/ip4/203.0.113.5/udp/4001', /must be a host and a TCP port/],
    ['/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWD2hq94uDLgVNKVycmknFqmnrQ9AW2nSoaoNw1YX4aqVi', /nothing after them/],
    ['/tcp/4001', /must be a host/],
    ['/ip4/203.0.113.5/tcp/0', /port 0/]
  ]
  for (const [text, message] of bad) {
    const checked = checkAnnounceAddress(text)
    assert.ok(!checked.ok && message.test(checked.message), `${text}: ${JSON.stringify(checked)}`)
  }
})

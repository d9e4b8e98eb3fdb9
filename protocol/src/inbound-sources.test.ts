import { describe, expect, test } from 'vitest'
import type { MultiaddrConnection } from '@libp2p/interface'
import { InboundHandshakes, SourceCounts, addressAndNetworkCaps, remoteIp, sourceAddressKey, sourceNetworkKey } from './inbound-sources.ts'

/** Enough of a MultiaddrConnection for the counts: an address, a status and a close event. */
function fakeConnection (address: string): MultiaddrConnection & { fireClose: () => void } {
  const listeners: Array<() => void> = []
  const components = address.split('/').filter((p) => p !== '').reduce<Array<{ name: string, value?: string }>>((out, part, i, parts) => {
    if (i % 2 === 0) out.push(part === 'p2p-circuit' ? { name: part } : { name: part, value: parts[i + 1] })
    return out
  }, [])
  const conn = {
    status: 'open',
    remoteAddr: { getComponents: () => components },
    addEventListener: (_type: string, listener: () => void) => { listeners.push(listener) },
    fireClose: () => { conn.status = 'closed'; for (const l of listeners.splice(0)) l() }
  }
  return conn as unknown as MultiaddrConnection & { fireClose: () => void }
}

describe('source keys', () => {
  test('IPv4 is its own key; IPv6 counts per /64 and per /48; mapped IPv4 is IPv4', () => {
    expect(sourceAddressKey('203.0.113.7')).toBe('203.0.113.7')
    expect(sourceAddressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(sourceAddressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(sourceAddressKey('::ffff:203.0.113.7')).toBe('203.0.113.7')
    expect(sourceNetworkKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1::/48')
    expect(sourceNetworkKey('203.0.113.7')).toBeUndefined()
    expect(sourceNetworkKey('::ffff:203.0.113.7')).toBeUndefined()
  })

  test('a relayed connection has no address of its own', () => {
    expect(remoteIp(fakeConnection('/ip4/10.0.0.1/tcp/4001').remoteAddr)).toBe('10.0.0.1')
    expect(remoteIp(fakeConnection('/ip4/10.0.0.1/tcp/4001/p2p/relay/p2p-circuit/p2p/peer').remoteAddr)).toBeUndefined()
  })
})

describe('SourceCounts', () => {
  test('refuses past either cap, and a release frees one place once', () => {
    const counts = new SourceCounts(addressAndNetworkCaps(2, 3))
    const a = counts.take('2001:db8:1:1::1')
    const b = counts.take('2001:db8:1:1::2')
    expect(a !== undefined && b !== undefined).toBe(true)
    expect(counts.take('2001:db8:1:1::3'), 'the /64 holds two').toBeUndefined()
    expect(counts.frees('2001:db8:1:1::3', '2001:db8:1:1::1')).toBe(true)
    expect(counts.frees('2001:db8:1:1::3', '2001:db8:1:2::1'), 'another /64 is not in the way').toBe(false)
    const c = counts.take('2001:db8:1:2::1')
    expect(c).toBeDefined()
    expect(counts.take('2001:db8:1:3::1'), 'the /48 holds three').toBeUndefined()
    expect(counts.take('2001:db8:2::1'), 'another /48 is not').toBeDefined()
    a!()
    a!()
    expect(counts.take('2001:db8:1:1::3'), 'one place freed').toBeDefined()
    expect(counts.take('2001:db8:1:1::4'), 'and only one').toBeUndefined()
  })
})

describe('InboundHandshakes', () => {
  test('an address holds at most its cap; a place frees when the handshake ends or the socket closes', () => {
    const handshakes = new InboundHandshakes(addressAndNetworkCaps(2, 10))
    const [first, second, third] = [1, 2, 3].map((port) => fakeConnection(`/ip4/192.0.2.1/tcp/${port}`))
    expect(handshakes.deny(first!)).toBe(false)
    expect(handshakes.deny(second!)).toBe(false)
    expect(handshakes.deny(third!), 'a third from the address').toBe(true)
    expect(handshakes.deny(fakeConnection('/ip4/192.0.2.2/tcp/1')), 'another address').toBe(false)
    handshakes.ended(first!)
    // Its socket closing later frees nothing more.
    first!.fireClose()
    expect(handshakes.deny(third!)).toBe(false)
    second!.fireClose()
    expect(handshakes.deny(fakeConnection('/ip4/192.0.2.1/tcp/4'))).toBe(false)
    expect(handshakes.deny(fakeConnection('/ip4/192.0.2.1/tcp/5'))).toBe(true)
    expect(handshakes.inProgress).toBe(3)
  })

  test('relayed connections are not counted, and one already closed is refused rather than held forever', () => {
    const handshakes = new InboundHandshakes(addressAndNetworkCaps(1, 1))
    for (let i = 0; i < 3; i++) expect(handshakes.deny(fakeConnection(`/ip4/10.0.0.1/tcp/1/p2p/relay/p2p-circuit/p2p/peer${i}`))).toBe(false)
    const gone = fakeConnection('/ip4/192.0.2.9/tcp/1')
    gone.fireClose()
    expect(handshakes.deny(gone)).toBe(true)
    expect(handshakes.inProgress).toBe(0)
  })
})

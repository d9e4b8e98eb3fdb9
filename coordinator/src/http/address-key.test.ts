import { test } from 'vitest'
import assert from 'node:assert/strict'
import { addressKey, isLoopbackAddress, networkOf } from './address-key.ts'

test('per-address limits count an IPv6 client by its /64 and an IPv4 one by its address, however written', () => {
  assert.equal(addressKey('203.0.113.7'), '203.0.113.7')
  assert.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7', 'IPv4-mapped IPv6 is the IPv4 address')
  assert.equal(addressKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64')
  assert.equal(addressKey('2001:0db8:0001:0002::1'), '2001:db8:1:2::/64', 'leading zeros and :: do not make another key')
  assert.equal(addressKey('2001:db8:1:2:ffff::9'), addressKey('2001:db8:1:2::1'), 'one /64, one key')
  assert.notEqual(addressKey('2001:db8:1:3::1'), addressKey('2001:db8:1:2::1'), 'another /64, another key')
  assert.equal(addressKey('2001:db8::'), '2001:db8:0:0::/64')
  assert.equal(addressKey('::1'), '0:0:0:0::/64')
  assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'a zone id is dropped')
  assert.equal(addressKey('64:ff9b::192.0.2.33'), '192.0.2.33', 'NAT64: the IPv4 client behind the translator')
  assert.equal(addressKey('64:ff9b::c000:221'), '192.0.2.33')
  assert.equal(addressKey('::ffff:7f00:1'), '127.0.0.1', 'mapped, in hex')
  assert.equal(addressKey('::FFFF:203.0.113.7'), '203.0.113.7')
  assert.equal(addressKey('unknown'), 'unknown', 'what is no address stays as it is')
})

test('a network is an IPv6 /64\'s /48, and an IPv4 address is its own network', () => {
  assert.equal(networkOf(addressKey('2001:db8:1:2::7')), '2001:db8:1::/48')
  assert.equal(networkOf(addressKey('2001:DB8:1:ffff::1')), networkOf(addressKey('2001:db8:1:2::9')), 'every /64 of one /48, one network')
  assert.notEqual(networkOf(addressKey('2001:db8:2::1')), networkOf(addressKey('2001:db8:1::1')))
  assert.equal(networkOf(addressKey('198.51.100.7')), '198.51.100.7')
  assert.equal(networkOf(addressKey('::ffff:198.51.100.7')), '198.51.100.7', 'a mapped IPv4 client is its IPv4 address here too')
  assert.equal(networkOf('unknown'), 'unknown')
})

test('loopback is 127/8 and ::1 in any notation, and nothing a translator delivers', () => {
  for (const address of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:7f00:1', '::1%lo']) {
    assert.equal(isLoopbackAddress(address), true, address)
  }
  for (const address of ['', 'unknown', 'localhost', '128.0.0.1', '10.0.0.1', '::', '::2', '::127.0.0.1', '64:ff9b::127.0.0.1', '::ffff:10.0.0.1', '2001:db8::1', '127.0.0.1:8080', '[::1]']) {
    assert.equal(isLoopbackAddress(address), false, address)
  }
})

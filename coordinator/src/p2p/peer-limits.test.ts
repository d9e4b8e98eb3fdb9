import { expect, test } from 'vitest'
import { DEFAULT_PEER_LIMITS, resolvePeerLimits } from './peer-limits.ts'

test('the defaults hold unless given; a raised per-address rate raises the per-address caps not given with it', () => {
  expect(resolvePeerLimits()).toEqual(DEFAULT_PEER_LIMITS)
  expect(resolvePeerLimits({ maxConnections: 10 })).toEqual({ ...DEFAULT_PEER_LIMITS, maxConnections: 10 })
  const loopback = resolvePeerLimits({ inboundConnectionThreshold: 1000, maxStrangersPerAddress: 3 })
  expect(loopback.maxHandshakesPerAddress).toBe(DEFAULT_PEER_LIMITS.maxHandshakesPerAddress * 200)
  expect(loopback.maxHandshakesPerNetwork).toBe(DEFAULT_PEER_LIMITS.maxHandshakesPerNetwork * 200)
  expect(loopback.maxStrangersPerNetwork).toBe(DEFAULT_PEER_LIMITS.maxStrangersPerNetwork * 200)
  expect(loopback.maxStrangersPerAddress, 'a cap given stays as given').toBe(3)
  expect(loopback.maxIncomingPendingConnections, 'totals are not scaled').toBe(DEFAULT_PEER_LIMITS.maxIncomingPendingConnections)
  expect(loopback.maxConnections).toBe(DEFAULT_PEER_LIMITS.maxConnections)
  expect(resolvePeerLimits({ inboundConnectionThreshold: 2 }).maxHandshakesPerAddress, 'a lowered rate lowers nothing else').toBe(DEFAULT_PEER_LIMITS.maxHandshakesPerAddress)
})

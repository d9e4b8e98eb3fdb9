import { test } from 'vitest'
import assert from 'node:assert/strict'
import { ConcurrencyLimiter } from './concurrency-limiter.ts'
import type { SlotTake } from './concurrency-limiter.ts'

const released = (slot: SlotTake): void => { if (slot.ok) slot.release() }
const reason = (slot: SlotTake): string => slot.ok ? 'given' : slot.reason

test('slots are capped per address, per IPv6 /48 and in all, and come back when released (once each)', () => {
  const limiter = new ConcurrencyLimiter({ perAddress: 2, perNetwork: 3, total: 5 })
  const a = [limiter.take('2001:db8:1:1::/64', 'exports'), limiter.take('2001:db8:1:1::/64', 'exports')]
  assert.ok(a.every((s) => s.ok))
  assert.match(reason(limiter.take('2001:db8:1:1::/64', 'exports')), /2 exports are already in progress from your address \(at most 2 at once\)/)
  // Another /64 of the same /48 gets one more, the network's third.
  const b = limiter.take('2001:db8:1:2::/64', 'exports')
  assert.ok(b.ok)
  assert.match(reason(limiter.take('2001:db8:1:3::/64', 'exports')), /3 exports are already in progress from your network \(at most 3 at once\)/)
  // IPv4 addresses are their own networks; the total still binds.
  const c = [limiter.take('203.0.113.1', 'exports'), limiter.take('203.0.113.2', 'exports')]
  assert.ok(c.every((s) => s.ok))
  assert.match(reason(limiter.take('203.0.113.3', 'exports')), /serving 5 exports already \(at most 5 at once\)/)
  assert.equal(limiter.held(), 5)
  assert.equal(limiter.held('2001:db8:1:1::/64'), 2)

  // Releasing twice frees one slot, not two.
  released(a[0]!)
  released(a[0]!)
  assert.equal(limiter.held(), 4)
  assert.equal(limiter.held('2001:db8:1:1::/64'), 1)
  assert.ok(limiter.take('2001:db8:1:1::/64', 'exports').ok)
  assert.match(reason(limiter.take('203.0.113.3', 'exports')), /at most 5 at once/)
  for (const s of [a[1]!, b, ...c]) released(s)
  assert.equal(limiter.held(), 1)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { StreamRate } from './stream-rate.ts'

test('a peer gets its burst at once, then streams at the refill rate; other peers are not affected', () => {
  const rate = new StreamRate({ perSecond: 2, burst: 3 })
  const taken = Array.from({ length: 5 }, () => rate.take('a', 0))
  assert.deepEqual(taken, [true, true, true, false, false])
  assert.equal(rate.take('b', 0), true, 'another peer has its own bucket')
  assert.equal(rate.take('a', 400), false, '0.8 of a stream refilled')
  assert.equal(rate.take('a', 500), true, 'one stream refilled after half a second')
  assert.equal(rate.take('a', 500), false)
  // Refills never go past the burst.
  assert.deepEqual(Array.from({ length: 4 }, () => rate.take('a', 60_000)), [true, true, true, false])
})

test('memory is bounded: the least recently seen peer is forgotten and starts again with a full bucket', () => {
  const rate = new StreamRate({ perSecond: 0, burst: 1, maxPeers: 2 })
  assert.equal(rate.take('a', 0), true)
  assert.equal(rate.take('a', 0), false)
  rate.take('b', 0)
  rate.take('c', 0)
  assert.equal(rate.take('a', 0), true, 'a was forgotten')
  assert.equal(rate.take('c', 0), false, 'c was kept')
})

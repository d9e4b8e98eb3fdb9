import { test } from 'vitest'
import assert from 'node:assert/strict'
import { RefusalLimiter } from './refusal-limiter.ts'

test('a peer refused too often is turned away until its bucket refills; others are unaffected', () => {
  const limiter = new RefusalLimiter({ capacity: 3, refillPerSecond: 1 })
  const t0 = 1_000_000
  for (let i = 0; i < 3; i++) {
    assert.equal(limiter.exhausted('evil', t0), false)
    limiter.spend('evil', t0)
  }
  assert.equal(limiter.exhausted('evil', t0), true)
  assert.equal(limiter.exhausted('honest', t0), false)
  assert.equal(limiter.exhausted('evil', t0 + 999), true)
  assert.equal(limiter.exhausted('evil', t0 + 1000), false, 'one refusal back after a second')
})

test('memory stays bounded: the oldest peers are forgotten', () => {
  const limiter = new RefusalLimiter({ capacity: 1, refillPerSecond: 0, maxPeers: 2 })
  limiter.spend('a', 0)
  limiter.spend('b', 0)
  limiter.spend('c', 0)
  assert.equal(limiter.exhausted('a', 0), false, 'a was forgotten')
  assert.equal(limiter.exhausted('b', 0), true)
  assert.equal(limiter.exhausted('c', 0), true)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { SignInThrottle } from './sign-in-throttle.ts'

test('a guesser at one address slows itself, not the account\'s owner elsewhere; many addresses meet the account\'s ceiling', () => {
  const throttle = new SignInThrottle({ perAccountAddress: 3, perAddress: 5, perAccount: 8, windowMs: 60_000 })
  const now = 1_000_000
  for (let i = 0; i < 3; i++) throttle.failed('ada@x.test', '198.51.100.1', now)
  assert.ok(throttle.retryAfter('ada@x.test', '198.51.100.1', now) > 0, 'the guessing address waits, even with the right password')
  assert.equal(throttle.retryAfter('ada@x.test', '203.0.113.9', now), 0, 'the owner, elsewhere, signs in')
  assert.equal(throttle.retryAfter('bo@x.test', '198.51.100.1', now), 0, 'another account from that address, not yet')
  for (let i = 0; i < 2; i++) throttle.failed('bo@x.test', '198.51.100.1', now)
  assert.ok(throttle.retryAfter('cy@x.test', '198.51.100.1', now) > 0, 'the address has used its guesses')
  // Guesses spread over addresses meet the account's own ceiling.
  for (let i = 2; i < 5; i++) throttle.failed('ada@x.test', `198.51.100.${i}`, now)
  assert.equal(throttle.retryAfter('ada@x.test', '203.0.113.9', now), 0)
  for (let i = 5; i < 7; i++) throttle.failed('ada@x.test', `198.51.100.${i}`, now)
  assert.ok(throttle.retryAfter('ada@x.test', '203.0.113.9', now) > 0, 'eight failures in all hold the account everywhere')
  assert.equal(throttle.retryAfter('ada@x.test', '203.0.113.9', now + 61_000), 0, 'until they leave the window')
})

test('the account\'s ceiling does not hold back where its owner signed in lately; a good sign-in clears that address\'s count', () => {
  const throttle = new SignInThrottle({ perAccountAddress: 3, perAddress: 50, perAccount: 8, windowMs: 60_000, knownMs: 3_600_000 })
  const now = 1_000_000
  throttle.succeeded('ada@x.test', '203.0.113.9', now)
  for (let i = 0; i < 8; i++) throttle.failed('ada@x.test', `198.51.100.${i}`, now)
  assert.ok(throttle.retryAfter('ada@x.test', '192.0.2.1', now) > 0, 'a new address meets the ceiling')
  assert.equal(throttle.retryAfter('ada@x.test', '203.0.113.9', now), 0, 'the owner\'s usual address does not')
  for (let i = 0; i < 3; i++) throttle.failed('ada@x.test', '203.0.113.9', now)
  assert.ok(throttle.retryAfter('ada@x.test', '203.0.113.9', now) > 0, 'its own guesses still count there')
  throttle.succeeded('ada@x.test', '203.0.113.9', now)
  assert.equal(throttle.retryAfter('ada@x.test', '203.0.113.9', now), 0, 'a good sign-in clears that address\'s count')
})

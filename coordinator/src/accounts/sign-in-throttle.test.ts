import { test } from 'vitest'
import assert from 'node:assert/strict'
import { SignInThrottle } from './sign-in-throttle.ts'
import type { SignInAttempt } from './sign-in-throttle.ts'

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

test('a shared address guessing at other emails does not lock out an account that signed in there before; others at that address wait', () => {
  const throttle = new SignInThrottle({ windowMs: 60_000 })
  const now = 1_000_000
  throttle.succeeded('owner@x.test', '198.51.100.1', now)
  for (let i = 0; i < 30; i++) throttle.failed(`made-up-${i}@x.test`, '198.51.100.1', now)
  assert.equal(throttle.retryAfter('owner@x.test', '198.51.100.1', now), 0, 'the owner still signs in where they did before')
  assert.ok(throttle.retryAfter('newcomer@x.test', '198.51.100.1', now) > 0, 'an account new to the address meets the address\'s limit')
  for (let i = 0; i < 10; i++) throttle.failed('owner@x.test', '198.51.100.1', now)
  assert.ok(throttle.retryAfter('owner@x.test', '198.51.100.1', now) > 0, 'guesses at the owner from that address still hold it back there')
})

test('familiar addresses are kept per account: nobody else\'s sign-ins push an account\'s out, only its own newer ones', () => {
  const throttle = new SignInThrottle({ windowMs: 60_000, addressesPerAccount: 3 })
  const now = 1_000_000
  throttle.succeeded('victim@x.test', '203.0.113.9', now)
  // Ten thousand sign-ins of the attacker's own account, each from another address, once flushed a global list of 10,000.
  for (let i = 0; i < 12_000; i++) throttle.succeeded('attacker@x.test', `2001:db8:${i.toString(16)}::/64`, now)
  for (let i = 0; i < 200; i++) throttle.failed('victim@x.test', `198.51.100.${i % 20}`, now)
  assert.ok(throttle.retryAfter('victim@x.test', '192.0.2.1', now) > 0, 'the account\'s ceiling holds it back at a new address')
  assert.equal(throttle.retryAfter('victim@x.test', '203.0.113.9', now), 0, 'but not where its owner signs in')
  // The account's own newer addresses do push its oldest out, past the per-account cap.
  for (let i = 0; i < 3; i++) throttle.succeeded('victim@x.test', `192.0.2.${10 + i}`, now)
  assert.ok(throttle.retryAfter('victim@x.test', '203.0.113.9', now) > 0, 'the oldest of four went')
  assert.equal(throttle.retryAfter('victim@x.test', '192.0.2.10', now), 0)
})

test('the accounts remembered are bounded; the one that signed in longest ago goes first', () => {
  const throttle = new SignInThrottle({ windowMs: 60_000, perAccount: 1, maxAccounts: 2 })
  const now = 1_000_000
  throttle.succeeded('a@x.test', '192.0.2.1', now)
  throttle.succeeded('b@x.test', '192.0.2.2', now)
  throttle.succeeded('a@x.test', '192.0.2.1', now)
  throttle.succeeded('c@x.test', '192.0.2.3', now)
  for (const email of ['a@x.test', 'b@x.test', 'c@x.test']) throttle.failed(email, '198.51.100.1', now)
  assert.equal(throttle.retryAfter('a@x.test', '192.0.2.1', now), 0)
  assert.ok(throttle.retryAfter('b@x.test', '192.0.2.2', now) > 0, 'b signed in longest ago and was forgotten')
  assert.equal(throttle.retryAfter('c@x.test', '192.0.2.3', now), 0)
})

test('sign-ins that add a new (account, address) pair are limited per address; familiar ones are not', () => {
  const throttle = new SignInThrottle({ windowMs: 60_000, newPairsPerAddress: 60 })
  const now = 1_000_000
  throttle.succeeded('regular@x.test', '198.51.100.1', now - 61_000)
  for (let i = 0; i < 60; i++) {
    assert.equal(throttle.retryAfter(`account-${i}@x.test`, '198.51.100.1', now), 0)
    throttle.succeeded(`account-${i}@x.test`, '198.51.100.1', now)
  }
  assert.ok(throttle.retryAfter('account-60@x.test', '198.51.100.1', now) > 0, 'the 61st new pair in the window waits')
  assert.equal(throttle.retryAfter('account-60@x.test', '203.0.113.9', now), 0, 'at its own address only')
  assert.equal(throttle.retryAfter('regular@x.test', '198.51.100.1', now), 0, 'someone who signed in there before does not wait')
  // Signing in again where one is familiar adds no pair.
  for (let i = 0; i < 100; i++) throttle.succeeded('regular@x.test', '203.0.113.9', now)
  assert.equal(throttle.retryAfter('account-60@x.test', '203.0.113.9', now), 0)
  assert.equal(throttle.retryAfter('account-60@x.test', '198.51.100.1', now + 61_000), 0, 'the limit is per window')
})

test('sign-ins begun and not yet ended count as failures, so a burst sent at once meets the limit a sequence does; ended ones leave nothing behind', () => {
  const throttle = new SignInThrottle({ perAccountAddress: 3, perAddress: 5, windowMs: 60_000 })
  const now = 1_000_000
  const begin = (email: string, address: string): SignInAttempt => {
    const started = throttle.begin(email, address, now)
    assert.ok('attempt' in started, `${email} at ${address} may begin`)
    return started.attempt
  }
  const burst = [0, 1, 2].map(() => begin('ada@x.test', '198.51.100.1'))
  const fourth = throttle.begin('ada@x.test', '198.51.100.1', now)
  assert.ok('retryAfter' in fourth && fourth.retryAfter > 0, 'three in flight hold the fourth back, as three failures would')
  assert.ok('attempt' in throttle.begin('ada@x.test', '203.0.113.9', now), 'the owner elsewhere is not held back')
  burst[0]!.failed()
  burst[1]!.end()
  assert.ok('attempt' in throttle.begin('ada@x.test', '198.51.100.1', now), 'one ended uncounted (busy) frees its place')
  // A failure turned from pending is counted once, however often its attempt is ended after.
  burst[0]!.end()
  burst[0]!.failed()
  burst[2]!.end()
  // One failure and the attempt just begun (never ended): one place left of three.
  const last = begin('ada@x.test', '198.51.100.1')
  assert.ok('retryAfter' in throttle.begin('ada@x.test', '198.51.100.1', now))
  last.succeeded()
  last.end()
  assert.equal(throttle.retryAfter('ada@x.test', '198.51.100.1', now), 0, 'a good sign-in clears the failure; nothing is left pending')
  // Pending sign-ins on other emails count against the address too.
  const others = [0, 1, 2, 3, 4].map((i) => begin(`made-up-${i}@x.test`, '198.51.100.2'))
  assert.ok(throttle.retryAfter('made-up-5@x.test', '198.51.100.2', now) > 0, 'five in flight from the address hold back a sixth')
  for (const attempt of others) attempt.end()
  assert.equal(throttle.retryAfter('made-up-5@x.test', '198.51.100.2', now), 0, 'and once they end uncounted, nothing')
})

test('failed sign-ins from one IPv6 /48 are limited together, pending ones too; an address familiar to its account there is not held back; IPv4 has no network limit', () => {
  const throttle = new SignInThrottle({ perNetwork: 10, windowMs: 60_000 })
  const now = 1_000_000
  throttle.succeeded('owner@x.test', '2001:db8:1:ffff::/64', now)
  // Two failures from each of five /64s: well under each address's limit of 30.
  for (let i = 0; i < 10; i++) throttle.failed(`made-up-${i}@x.test`, `2001:db8:1:${Math.floor(i / 2)}::/64`, now)
  assert.ok(throttle.retryAfter('someone@x.test', '2001:db8:1:99::/64', now) > 0, 'a fresh /64 in that /48 waits')
  assert.equal(throttle.retryAfter('owner@x.test', '2001:db8:1:ffff::/64', now), 0, 'the owner where they signed in does not')
  assert.equal(throttle.retryAfter('someone@x.test', '2001:db8:2:99::/64', now), 0, 'nor does another /48')
  assert.equal(throttle.retryAfter('someone@x.test', '2001:db8:1:99::/64', now + 61_000), 0, 'the limit is per window')
  // Sign-ins in flight count as the failures they may become.
  for (let i = 0; i < 10; i++) assert.ok('attempt' in throttle.begin(`made-up-${i}@x.test`, `2001:db8:3:${i}::/64`, now))
  assert.ok(throttle.retryAfter('someone@x.test', '2001:db8:3:99::/64', now) > 0, 'ten in flight from one /48 hold back an eleventh')
  // IPv4: each address is limited on its own (30), a /24 not at all.
  for (let i = 0; i < 40; i++) throttle.failed(`made-up-${i}@x.test`, `198.51.100.${i}`, now)
  assert.equal(throttle.retryAfter('someone@x.test', '198.51.100.200', now), 0)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { RateLimitedError } from '../errors.ts'
import { WindowLimiter } from './window-limiter.ts'
import { takeOrRefuseAll } from './api-rates.ts'

test('several limits are taken together or not at all: a refusal by one spends nothing of the others', () => {
  const perAddress = new WindowLimiter({ limit: 2, windowMs: 60_000 })
  const perNetwork = new WindowLimiter({ limit: 3, windowMs: 60_000 })
  const take = (address: string): void => { takeOrRefuseAll([[perAddress, address, 'sign-ups from this address'], [perNetwork, 'net', 'sign-ups from this network']]) }
  take('a')
  take('a')
  assert.throws(() => { take('a') }, (err: unknown) => err instanceof RateLimitedError && /sign-ups from this address/.test(err.message))
  // The address's refusal did not count against the network: it still has one left.
  take('b')
  assert.throws(() => { take('c') }, (err: unknown) => err instanceof RateLimitedError && /sign-ups from this network/.test(err.message) && err.retryAfterS > 0)
  assert.equal(perAddress.retryAfter('c'), 0, 'and the network\'s refusal spent nothing of the new address')
})

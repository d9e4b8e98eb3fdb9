import { test } from 'vitest'
import assert from 'node:assert/strict'
import { MAX_HOLD_MS, holdMs, retryAfterHoldMs, waitPollMs } from './wait-poll.ts'
import { REQUEST_TIMEOUT_MS } from '@barnraise/protocol'

test('waiting nodes poll every second when few are online, and keep idle polls near 200 a second when many are', () => {
  assert.equal(waitPollMs(0), 1000)
  assert.equal(waitPollMs(100), 1000)
  assert.equal(waitPollMs(1000), 5000)
  assert.equal(1000 / (waitPollMs(1000) / 1000), 200)
  assert.equal(waitPollMs(100_000), 10_000)
})

test('a held work request is answered well before the agent stops waiting, and the agent asks again at once unless polls are sparser than holds', () => {
  assert.equal(holdMs(4), 1000)
  assert.equal(holdMs(1000), MAX_HOLD_MS)
  assert.equal(holdMs(100_000), MAX_HOLD_MS)
  assert.ok(MAX_HOLD_MS <= REQUEST_TIMEOUT_MS - 5000, 'seconds to spare for a loaded coordinator')
  assert.equal(retryAfterHoldMs(4, holdMs(4)), 1)
  // From 800 nodes a poll is longer than a hold: the rest of it is spent asleep at the agent.
  assert.equal(retryAfterHoldMs(1000, holdMs(1000)), 5000 - MAX_HOLD_MS)
  assert.equal(retryAfterHoldMs(100_000, holdMs(100_000)), 10_000 - MAX_HOLD_MS)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { waitPollMs } from './wait-poll.ts'

test('waiting nodes poll every second when few are online, and keep idle polls near 200 a second when many are', () => {
  assert.equal(waitPollMs(0), 1000)
  assert.equal(waitPollMs(100), 1000)
  assert.equal(waitPollMs(1000), 5000)
  assert.equal(1000 / (waitPollMs(1000) / 1000), 200)
  assert.equal(waitPollMs(100_000), 10_000)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { formatRelative } from './time.ts'

test('relative times: seconds, minutes, hours, days, then a date', () => {
  const now = Date.parse('2026-11-24T12:00:00Z')
  const ago = (seconds: number): string => formatRelative(new Date(now - seconds * 1000).toISOString(), now)
  assert.equal(ago(2), 'just now')
  assert.equal(ago(42), '42 s ago')
  assert.equal(ago(5 * 60 + 30), '5 min ago')
  assert.equal(ago(3 * 3600 + 59 * 60), '3 h ago')
  assert.equal(ago(2 * 86400), '2 d ago')
  assert.doesNotMatch(ago(30 * 86400), /ago/)
})

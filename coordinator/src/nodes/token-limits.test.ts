import { test } from 'vitest'
import assert from 'node:assert/strict'
import { tokenExpiry, tokenLimitsSchema } from './enrollment-tokens.ts'

test('token limits: one use by default, 1 to 10000 uses, a positive lifetime of at most a year', () => {
  assert.deepEqual(tokenLimitsSchema.parse({}), { maxUses: 1 })
  assert.equal(tokenLimitsSchema.parse({ maxUses: 10_000 }).maxUses, 10_000)
  assert.equal(tokenLimitsSchema.safeParse({ maxUses: 0 }).success, false)
  assert.equal(tokenLimitsSchema.safeParse({ maxUses: 10_001 }).success, false)
  assert.equal(tokenLimitsSchema.safeParse({ maxUses: 1.5 }).success, false)
  assert.equal(tokenLimitsSchema.safeParse({ expiresInHours: 0 }).success, false)
  assert.equal(tokenLimitsSchema.safeParse({ expiresInHours: 24 * 366 }).success, false)
})

test('a token expires its lifetime after issue, or never', () => {
  assert.equal(tokenExpiry(undefined), null)
  assert.equal(tokenExpiry(2, 1_000)?.getTime(), 1_000 + 2 * 3_600_000)
})

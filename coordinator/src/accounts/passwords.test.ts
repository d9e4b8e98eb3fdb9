import { test } from 'vitest'
import assert from 'node:assert/strict'
import { hashPassword, verifyPassword } from './passwords.ts'

test('a hash verifies its own password only, and never stores it in clear', async () => {
  const stored = await hashPassword('correct horse battery')
  assert.ok(!stored.includes('correct'))
  assert.equal(await verifyPassword('correct horse battery', stored), true)
  assert.equal(await verifyPassword('correct horse batterY', stored), false)
  assert.equal(await verifyPassword('x', 'garbage'), false)
  assert.notEqual(await hashPassword('same'), await hashPassword('same'), 'salted')
})

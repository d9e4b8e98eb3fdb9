import { test } from 'vitest'
import assert from 'node:assert/strict'
import type { SessionUser } from '../accounts/accounts.ts'
import type { Role } from '../accounts/roles.ts'
import { maySteerRun } from './run-access.ts'

function user (id: string, roles: Role[]): SessionUser {
  return { id, email: `${id}@example.org`, displayName: id, roles, organizationId: null, organizationName: null }
}

test('an admin steers any run, ownerless ones included; an organizer steers only the runs they own', () => {
  assert.equal(maySteerRun(user('root', ['admin']), 'someone-else'), true)
  assert.equal(maySteerRun(user('ada', ['organizer']), 'ada'), true)
  assert.equal(maySteerRun(user('ada', ['organizer']), null), false, 'an ownerless run is the admin\'s')
  assert.equal(maySteerRun(user('root', ['admin']), null), true)
  assert.equal(maySteerRun(user('ada', ['organizer']), 'grace'), false)
})

test('nobody signed in, and people without the organizer role, steer nothing', () => {
  assert.equal(maySteerRun(null, null), false)
  assert.equal(maySteerRun(user('lab', ['lab_admin']), 'lab'), false)
  assert.equal(maySteerRun(user('funder', ['funder']), null), false)
})

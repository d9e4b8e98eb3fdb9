import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { SessionUser } from '../accounts/accounts.ts'
import type { Role } from '../accounts/roles.ts'
import { maySteerRun } from './run-access.ts'

function user (id: string, roles: Role[]): SessionUser {
  return { id, email: `${id}@example.org`, displayName: id, roles, organizationId: null, organizationName: null }
}

test('an admin steers any run; an organizer steers their own runs and runs with no recorded creator', () => {
  assert.equal(maySteerRun(user('root', ['admin']), 'someone-else'), true)
  assert.equal(maySteerRun(user('ada', ['organizer']), 'ada'), true)
  assert.equal(maySteerRun(user('ada', ['organizer']), null), true)
  assert.equal(maySteerRun(user('ada', ['organizer']), 'grace'), false)
})

test('nobody signed in, and people without the organizer role, steer nothing', () => {
  assert.equal(maySteerRun(null, null), false)
  assert.equal(maySteerRun(user('lab', ['lab_admin']), 'lab'), false)
  assert.equal(maySteerRun(user('funder', ['funder']), null), false)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { TRPCClientError } from '@trpc/client'
import { fieldErrorsFrom, placeFieldErrors } from './field-errors.ts'

/** A refusal as the tRPC client hands it to a form. */
function refusal (message: string, data: Record<string, unknown>): TRPCClientError<never> {
  return new TRPCClientError(message, { result: { error: { message, code: -32600, data } } } as never)
}

test('a refusal code a form ties to a field lands on that field, with the server\'s words or the form\'s', () => {
  const taken = refusal('the name "Hilltop Lab" is taken', { code: 'CONFLICT', appCode: 'ERR_NAME_TAKEN' })
  assert.deepEqual(fieldErrorsFrom(taken, { ERR_NAME_TAKEN: 'organization' }), { organization: 'The name "Hilltop Lab" is taken' })
  const exists = refusal('an account with this email exists', { code: 'CONFLICT', appCode: 'ERR_CONFLICT' })
  assert.deepEqual(fieldErrorsFrom(exists, { CONFLICT: { field: 'email', message: 'sign in instead' } }), { email: 'sign in instead' })
})

test('fields the server named are kept; a refusal about nothing in particular gives none', () => {
  const spec = refusal('invalid run spec', { code: 'BAD_REQUEST', fields: [{ field: 'recipe.seqLen', message: 'too long' }, { field: 'name', message: 'give the run a name' }] })
  assert.deepEqual(fieldErrorsFrom(spec), { 'recipe.seqLen': 'too long', name: 'give the run a name' })
  assert.deepEqual(fieldErrorsFrom(refusal('the coordinator is busy', { code: 'TOO_MANY_REQUESTS' })), {})
  assert.deepEqual(fieldErrorsFrom(new Error('offline')), {})
})

/** A tRPC input refusal: its message is the zod issues' JSON, as the coordinator sends it. */
function inputRefusal (issues: Array<Record<string, unknown>>): TRPCClientError<never> {
  return refusal(JSON.stringify(issues, null, 2), { code: 'BAD_REQUEST' })
}

test('a refused pledge note lands on the note, not on the amount', () => {
  const note = inputRefusal([{ code: 'custom', path: ['note'], message: 'pledge note must be plain text: character 1 is U+202E' }])
  assert.deepEqual(placeFieldErrors(note, ['amount', 'note']), { fields: { note: 'pledge note must be plain text: character 1 is U+202E' }, message: null })
})

test('a refusal of a field the form does not show is said above the form, not dropped', () => {
  // An invitation link's code is no input on the sign-up form: its refusal must still be read.
  const invite = inputRefusal([
    { origin: 'string', code: 'too_big', maximum: 100, inclusive: true, path: ['invite'], message: 'Too big: expected string to have <=100 characters' },
    { code: 'custom', path: ['displayName'], message: 'tell us your name' }
  ])
  const placed = placeFieldErrors(invite, ['email', 'password', 'displayName'])
  assert.deepEqual(placed.fields, { displayName: 'tell us your name' })
  assert.equal(placed.message, 'Invite: use at most 100 characters')
  // A refusal about no field at all is the form's message.
  assert.deepEqual(placeFieldErrors(refusal('the coordinator is busy', { code: 'TOO_MANY_REQUESTS' }), ['email']), { fields: {}, message: 'The coordinator is busy' })
})

test('zod\'s generic wording becomes words a person can act on, on the field it names', () => {
  const long = inputRefusal([
    { origin: 'string', code: 'too_big', maximum: 200, inclusive: true, path: ['newPassword'], message: 'Too big: expected string to have <=200 characters' },
    { expected: 'int', format: 'safeint', code: 'invalid_type', path: ['maxUses'], message: 'Invalid input: expected int, received number' },
    { origin: 'number', code: 'too_small', minimum: 0, inclusive: false, path: ['expiresInHours'], message: 'Too small: expected number to be >0' }
  ])
  assert.deepEqual(fieldErrorsFrom(long), { newPassword: 'use at most 200 characters', maxUses: 'enter a whole number', expiresInHours: 'must be more than 0' })
})

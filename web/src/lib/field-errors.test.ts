import { test } from 'vitest'
import assert from 'node:assert/strict'
import { TRPCClientError } from '@trpc/client'
import { fieldErrorsFrom } from './field-errors.ts'

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

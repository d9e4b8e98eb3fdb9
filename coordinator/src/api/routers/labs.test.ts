// A token's label is shown on the lab's page: it is refused, as the caller's error, before the
// token is made when it holds characters that reorder or hide text.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { TRPCError } from '@trpc/server'
import type { ApiContext } from '../context.ts'
import { labsRouter } from './labs.ts'

/** A lab admin with no organization: any input that gets past the schema is refused for that instead. */
function caller (): ReturnType<typeof labsRouter.createCaller> {
  const ctx = { user: { id: '00000000-0000-4000-8000-000000000001', email: 'l@labs.test', displayName: 'Lee', roles: ['lab_admin'], organizationId: null, organizationName: null } } as unknown as ApiContext
  return labsRouter.createCaller(ctx)
}

async function refusal (label: string): Promise<{ code: string, message: string }> {
  try {
    await caller().createToken({ maxUses: 1, label })
  } catch (err) {
    assert.ok(err instanceof TRPCError)
    return { code: err.code, message: err.message }
  }
  assert.fail('the token was made')
}

test('a token label with a bidirectional override or a control character is the caller\'s error, naming the character', async () => {
  for (const label of ['rack \u202eB', 'rack\u0007B']) {
    const { code, message } = await refusal(label)
    assert.equal(code, 'BAD_REQUEST', label)
    assert.match(message, /plain text/, label)
  }
})

test('a plain label gets past the schema (and is refused here only for the missing organization)', async () => {
  assert.equal((await refusal('GPU rack B')).code, 'PRECONDITION_FAILED')
})

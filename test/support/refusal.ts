import assert from 'node:assert/strict'
import { TRPCClientError } from '@trpc/client'

/** The refusal's tRPC code, the coordinator's own code and the message; fails if the call was allowed. */
export async function refused (call: Promise<unknown>): Promise<{ code: string, appCode: string | null, message: string }> {
  try {
    await call
  } catch (err) {
    assert.ok(err instanceof TRPCClientError, String(err))
    const data = err.data as { code: string, appCode?: string | null }
    return { code: data.code, appCode: data.appCode ?? null, message: err.message }
  }
  throw new Error('the call was allowed')
}

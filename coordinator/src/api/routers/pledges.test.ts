// One person's pledges to one run stop at MAX_PLEDGES_PER_PERSON_PER_RUN even when sent at once:
// they are counted under a lock on the person, in the transaction that inserts.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import { TRPCError } from '@trpc/server'
import { openDatabase } from '../../db/open-database.ts'
import type { Database } from '../../db/schema.ts'
import type { ApiContext } from '../context.ts'
import { CoordinatorError } from '../../errors.ts'
import { apiRates } from '../../limits/api-rates.ts'
import { openTestStore } from '../../../../test/support/store.ts'
import { MAX_PLEDGES_PER_PERSON_PER_RUN, pledgesRouter } from './pledges.ts'

/** A funder and a running run, and a caller signed in as the funder (the hourly rate set out of the way). */
async function funderOf (db: Kysely<Database>) {
  const user = await db.insertInto('users').values({ email: `f${Math.random()}@pledges.test`, display_name: 'Fay', password_hash: 'x', roles: ['funder'], organization_id: null }).returning('id').executeTakeFirstOrThrow()
  const run = await db.insertInto('runs').values({ name: 'pledged', spec: JSON.stringify({ rounds: 1 }), created_by: null, updated_at: new Date(), latest_checkpoint: null, status: 'running' }).returning('id').executeTakeFirstOrThrow()
  const ctx = {
    db,
    user: { id: user.id, email: 'fay@pledges.test', displayName: 'Fay', roles: ['funder'], organizationId: null, organizationName: null },
    rates: apiRates({ pledgesPerHour: 1000 }),
    changes: { publish: () => {} },
    setResponseHeader: () => {}
  } as unknown as ApiContext
  return { userId: user.id, runId: run.id, caller: pledgesRouter.createCaller(ctx) }
}

/** `n` pledges sent at once: how many were made, each refusal's domain code, and the rows stored. */
async function pledgeAtOnce (db: Kysely<Database>, n: number): Promise<{ made: number, refused: string[], rows: number }> {
  const { caller, runId, userId } = await funderOf(db)
  const results = await Promise.allSettled(Array.from({ length: n }, async () => await caller.create({ runId, kind: 'usd', amount: 1 })))
  const rows = await db.selectFrom('pledges').select('id').where('run_id', '=', runId).where('user_id', '=', userId).execute()
  return {
    made: results.filter((r) => r.status === 'fulfilled').length,
    refused: results.flatMap((r) => r.status === 'rejected' ? [r.reason instanceof TRPCError && r.reason.cause instanceof CoordinatorError ? r.reason.cause.code : String(r.reason)] : []),
    rows: rows.length
  }
}

test('on Postgres, pledges sent at once by one person stop at the per-run limit', async () => {
  const store = await openTestStore('pledge-quota')
  try {
    const { made, refused, rows } = await pledgeAtOnce(store.db, MAX_PLEDGES_PER_PERSON_PER_RUN + 10)
    assert.equal(made, MAX_PLEDGES_PER_PERSON_PER_RUN)
    assert.equal(rows, MAX_PLEDGES_PER_PERSON_PER_RUN)
    assert.deepEqual(refused, Array(10).fill('ERR_QUOTA_EXCEEDED'))
  } finally {
    await store.close()
  }
})

test('on PGlite the lock and the count run too', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  try {
    const { made, rows } = await pledgeAtOnce(database.db, MAX_PLEDGES_PER_PERSON_PER_RUN + 3)
    assert.equal(made, MAX_PLEDGES_PER_PERSON_PER_RUN)
    assert.equal(rows, MAX_PLEDGES_PER_PERSON_PER_RUN)
  } finally {
    await database.close()
  }
})

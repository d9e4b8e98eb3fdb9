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
async function funderOf (db: Kysely<Database>, pledgesPerHour = 1000) {
  const user = await db.insertInto('users').values({ email: `f${Math.random()}@pledges.test`, display_name: 'Fay', password_hash: 'x', roles: ['funder'], organization_id: null }).returning('id').executeTakeFirstOrThrow()
  const run = await db.insertInto('runs').values({ name: 'pledged', spec: JSON.stringify({ rounds: 1 }), created_by: null, updated_at: new Date(), latest_checkpoint: null, status: 'running' }).returning('id').executeTakeFirstOrThrow()
  const ctx = {
    db,
    user: { id: user.id, email: 'fay@pledges.test', displayName: 'Fay', roles: ['funder'], organizationId: null, organizationName: null },
    rates: apiRates({ pledgesPerHour }),
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

test('a pledge note is plain text, refused naming the note and what it refuses, with nothing stored or counted; line feeds and tabs pass', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  try {
    // One pledge an hour: the good one at the end shows the refused ones were not counted.
    const { caller, runId, userId } = await funderOf(database.db, 1)
    const rows = async (): Promise<string[]> => (await database.db.selectFrom('pledges').select('note').where('run_id', '=', runId).where('user_id', '=', userId).execute()).map((r) => r.note ?? '')
    for (const [note, what] of [['for \u202etxt.exe', /U\+202E \(right-to-left override, a bidirectional formatting character\)/], ['red \u001b[31m', /U\+001B \(escape, a control character\)/], ['over\rprint', /U\+000D \(carriage return, a control character\)/], ['iso\u2066late', /U\+2066/]] as const) {
      const err = await caller.create({ runId, kind: 'usd', amount: 5, note }).then(() => undefined, (e: unknown) => e)
      assert.ok(err instanceof TRPCError, `${JSON.stringify(note)}: ${String(err)}`)
      assert.equal(err.code, 'BAD_REQUEST')
      assert.match(err.message, /pledge note must be plain text: /)
      assert.match(err.message, what)
      assert.match(err.message, /line feeds \(\\\\n\) and tabs are allowed/)
    }
    assert.deepEqual(await rows(), [], 'a refused note stores nothing')
    await caller.create({ runId, kind: 'usd', amount: 5, note: 'For the Hilltop team.\n\tThanks, Fay 🚀' })
    assert.deepEqual(await rows(), ['For the Hilltop team.\n\tThanks, Fay 🚀'])
  } finally {
    await database.close()
  }
})

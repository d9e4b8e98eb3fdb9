import { test } from 'vitest'
import assert from 'node:assert/strict'
import { openDatabase } from '../db/open-database.ts'
import { MAX_SESSIONS_PER_USER, createSession, userForSession } from './accounts.ts'

test('sign-ins do not pile up sessions: expired ones and those past the newest few are ended', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  try {
    const user = (await db.insertInto('users').values({ email: 'a@x.test', display_name: 'A', password_hash: 'x', roles: ['funder'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
    const other = (await db.insertInto('users').values({ email: 'b@x.test', display_name: 'B', password_hash: 'x', roles: ['funder'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
    const theirs = await createSession(db, other)
    await db.insertInto('sessions').values({ token_hash: 'expired', user_id: user, expires_at: new Date(Date.now() - 1000) }).execute()
    const first = await createSession(db, user)
    const count = async (id: string): Promise<number> => Number((await db.selectFrom('sessions').select((eb) => eb.fn.countAll<string>().as('n')).where('user_id', '=', id).executeTakeFirstOrThrow()).n)
    assert.equal(await count(user), 1, 'the expired session went')
    const tokens = [first.token]
    for (let i = 1; i < MAX_SESSIONS_PER_USER + 5; i++) {
      tokens.push((await createSession(db, user)).token)
      // Expiry times are this far apart, so "newest" is unambiguous.
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    assert.equal(await count(user), MAX_SESSIONS_PER_USER)
    assert.equal(await userForSession(db, tokens[0]), null, 'the oldest sessions ended')
    assert.notEqual(await userForSession(db, tokens.at(-1)), null, 'the newest work')
    assert.notEqual(await userForSession(db, theirs.token), null, 'nobody else\'s sessions are touched')
  } finally {
    await database.close()
  }
})

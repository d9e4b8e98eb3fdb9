// The auth procedures called directly (no HTTP) against an embedded database: how sign-up and
// sign-in meet the sign-in throttle, from the hostile review of the HTTP edge (M3, M4, L1).
import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { TRPCError } from '@trpc/server'
import { openDatabase } from '../../db/open-database.ts'
import type { OpenedDatabase } from '../../db/open-database.ts'
import { createAccount } from '../../accounts/accounts.ts'
import type { SessionUser } from '../../accounts/accounts.ts'
import { hashPassword } from '../../accounts/passwords.ts'
import { SetupCode } from '../../accounts/setup-code.ts'
import { SignInThrottle } from '../../accounts/sign-in-throttle.ts'
import { CoordinatorError } from '../../errors.ts'
import { apiRates } from '../../limits/api-rates.ts'
import type { ApiContext } from '../context.ts'
import { authRouter } from './auth.ts'

let database: OpenedDatabase
beforeAll(async () => {
  database = await openDatabase({ dataDir: 'memory://' })
  // Web sign-up needs the install to have its admin.
  await createAccount(database.db, { email: 'root@auth.test', password: 'root-password-1', displayName: 'Root', role: 'funder', admin: true })
})
afterAll(async () => { await database.close() })

/** A caller at `address`, sharing `signIns`; `cookies` collects the sessions it was given. */
function callerAt (address: string, signIns: SignInThrottle, options: { setupCode?: SetupCode, cookies?: string[], user?: SessionUser } = {}): ReturnType<typeof authRouter.createCaller> {
  const context: Partial<ApiContext> = {
    db: database.db,
    signIns,
    rates: apiRates({ signUpsPerHour: 1000 }),
    setupCode: options.setupCode ?? new SetupCode(),
    openOrganizing: false,
    user: options.user ?? null,
    sessionToken: undefined,
    clientAddress: address,
    setSessionCookie: (token) => { options.cookies?.push(token) },
    clearSessionCookie: () => {},
    setResponseHeader: () => {}
  }
  return authRouter.createCaller(context as ApiContext)
}

/** The refusal a call ended with: its tRPC code, the domain code behind it, its message. */
async function refusal (call: Promise<unknown>): Promise<{ code: string, appCode: string | null, message: string }> {
  try {
    await call
  } catch (err) {
    assert.ok(err instanceof TRPCError, String(err))
    return { code: err.code, appCode: err.cause instanceof CoordinatorError ? err.cause.code : null, message: err.message }
  }
  throw new Error('the call was allowed')
}

const count = async (table: 'users' | 'organizations'): Promise<number> =>
  Number((await database.db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n)

test('a sign-up for an email that has an account is a sign-in: the right password signs its owner in, a wrong one is a counted failure that says no more than sign-in does', async () => {
  const ada = await createAccount(database.db, { email: 'ada@l1.test', password: 'ada-password-1', displayName: 'Ada', role: 'funder', admin: false })
  const signIns = new SignInThrottle({ perAccountAddress: 2 })
  const cookies: string[] = []
  const caller = callerAt('198.51.100.10', signIns, { cookies })
  const [users, organizations] = [await count('users'), await count('organizations')]

  const again = await caller.signUp({ email: 'ADA@l1.test', password: 'ada-password-1', displayName: 'Someone', role: 'lab_admin', organization: 'A New Lab' })
  assert.deepEqual([again.id, again.roles, again.displayName, again.organizationName], [ada.id, ['funder'], 'Ada', null], 'the owner is signed in to the account as it is')
  assert.equal(cookies.length, 1, 'with a session, as sign-in gives')
  assert.deepEqual([await count('users'), await count('organizations')], [users, organizations], 'nothing was created')

  const wrong = await refusal(caller.signUp({ email: 'ada@l1.test', password: 'a-wrong-guess', displayName: 'Eve', role: 'funder' }))
  assert.deepEqual(wrong, { code: 'CONFLICT', appCode: 'ERR_EMAIL_TAKEN', message: 'could not create this account; if one already exists for this email, sign in instead' })
  assert.equal(cookies.length, 1)
  assert.equal(signIns.retryAfter('ada@l1.test', '198.51.100.10'), 0)
  await refusal(caller.signIn({ email: 'ada@l1.test', password: 'another-wrong-guess' }))
  // Two failures (one sign-up, one sign-in) meet this throttle's limit of two: sign-up checks it first.
  assert.equal((await refusal(caller.signUp({ email: 'ada@l1.test', password: 'ada-password-1', displayName: 'Ada', role: 'funder' }))).code, 'TOO_MANY_REQUESTS')
  assert.equal((await refusal(caller.signUp({ email: 'ada@l1.test', password: 'a-third-guess', displayName: 'Eve', role: 'funder' }))).code, 'TOO_MANY_REQUESTS')
  assert.equal(cookies.length, 1)
  // A new email from elsewhere still signs up.
  const bo = await callerAt('203.0.113.20', signIns, { cookies }).signUp({ email: 'bo@l1.test', password: 'bo-password-11', displayName: 'Bo', role: 'funder' })
  assert.equal(bo.email, 'bo@l1.test')
})

test('signing up again with an existing email spends neither the setup code nor an invitation', async () => {
  const fresh = await openDatabase({ dataDir: 'memory://' })
  try {
    await createAccount(fresh.db, { email: 'op@l1.test', password: 'op-password-11', displayName: 'Op', role: 'funder', admin: false })
    const setupCode = new SetupCode()
    const code = setupCode.issue()
    const context: Partial<ApiContext> = {
      db: fresh.db, signIns: new SignInThrottle(), rates: apiRates(), setupCode, openOrganizing: false, user: null, sessionToken: undefined,
      clientAddress: '198.51.100.30', setSessionCookie: () => {}, clearSessionCookie: () => {}, setResponseHeader: () => {}
    }
    const caller = authRouter.createCaller(context as ApiContext)
    const signedIn = await caller.signUp({ email: 'op@l1.test', password: 'op-password-11', displayName: 'Op', role: 'funder', setupCode: code })
    assert.deepEqual(signedIn.roles, ['funder'], 'the code did not make the existing account admin')
    assert.equal(setupCode.pending, true, 'the code is still there for the admin\'s sign-up')
    const admin = await caller.signUp({ email: 'admin@l1.test', password: 'admin-password-1', displayName: 'Admin', role: 'funder', setupCode: code })
    assert.ok(admin.roles.includes('admin'))
  } finally {
    await fresh.close()
  }
})

test('a shared address\'s failures on made-up emails do not lock out someone who signed up or signed in there; a newcomer there waits', async () => {
  const signIns = new SignInThrottle()
  const office = callerAt('198.51.100.40', signIns)
  await office.signUp({ email: 'lin@m3.test', password: 'lin-password-1', displayName: 'Lin', role: 'funder' })
  await createAccount(database.db, { email: 'newcomer@m3.test', password: 'new-password-1', displayName: 'New', role: 'funder', admin: false })
  for (let i = 0; i < 30; i++) assert.equal((await refusal(office.signIn({ email: `made-up-${i}@m3.test`, password: 'guess-guess' }))).message, 'wrong email or password')
  assert.deepEqual(await office.signIn({ email: 'lin@m3.test', password: 'lin-password-1' }), { ok: true }, 'Lin signs in where she signed up')
  assert.equal((await refusal(office.signIn({ email: 'newcomer@m3.test', password: 'new-password-1' }))).code, 'TOO_MANY_REQUESTS')
})

test('a sign-in turned away because the password checker is full (ERR_BUSY) is not counted as a failed sign-in', async () => {
  await createAccount(database.db, { email: 'busy@m3.test', password: 'busy-password-1', displayName: 'Busy', role: 'funder', admin: false })
  // One counted failure would hold this account back at this address.
  const signIns = new SignInThrottle({ perAccountAddress: 1 })
  const caller = callerAt('198.51.100.50', signIns)
  let busy = 0
  // Fill scrypt's 4 running and 64 waiting places, then sign in; retried until one sign-in meets the full queue.
  for (let attempt = 0; attempt < 20 && busy === 0; attempt++) {
    const flood = Array.from({ length: 80 }, async () => await hashPassword('flood').catch(() => undefined))
    const result = await refusal(caller.signIn({ email: 'busy@m3.test', password: 'busy-password-1' })).catch(() => null)
    if (result?.appCode === 'ERR_BUSY') {
      busy++
      assert.equal(result.code, 'TOO_MANY_REQUESTS')
    }
    await Promise.all(flood)
  }
  assert.ok(busy > 0, 'a sign-in met the full queue')
  assert.equal(signIns.retryAfter('busy@m3.test', '198.51.100.50'), 0, 'and was not counted')
  assert.deepEqual(await caller.signIn({ email: 'busy@m3.test', password: 'busy-password-1' }), { ok: true })
})

test('display and organization names must be plain text without invisible characters, and a look-alike of a taken organization name is taken', async () => {
  const caller = callerAt('198.51.100.60', new SignInThrottle())
  const base = { password: 'plain-password-1', role: 'lab_admin' as const }
  await caller.signUp({ ...base, email: 'lin@m4.test', displayName: 'Lin', organization: 'Hilltop Lab' })
  const bidi = await refusal(caller.signUp({ ...base, email: 'eve1@m4.test', displayName: 'Lin\u202e', organization: 'Eve Lab' }))
  assert.equal(bidi.code, 'BAD_REQUEST')
  assert.match(bidi.message, /display name must be plain text: character 4 is U\+202E/)
  for (const name of ['Hilltop Lab\u200b', 'Hilltop\u2060Lab', 'Hilltop Lab\u202e', 'Hilltop\u0007Lab', '\u3164']) {
    const refused = await refusal(caller.signUp({ ...base, email: 'eve2@m4.test', displayName: 'Eve', organization: name }))
    assert.equal(refused.code, 'BAD_REQUEST', JSON.stringify(name))
    assert.match(refused.message, /organization name must (be plain text|not hold invisible)/, JSON.stringify(name))
  }
  for (const name of ['Hilltop  Lab', 'hilltop lab', 'HILLTOP LAB', 'Hilltop\u00a0Lab', 'Hi\u200dlltop Lab', '\uff28illtop Lab']) {
    const refused = await refusal(caller.signUp({ ...base, email: 'eve3@m4.test', displayName: 'Eve', organization: name }))
    assert.deepEqual([refused.code, refused.appCode], ['CONFLICT', 'ERR_NAME_TAKEN'], JSON.stringify(name))
  }
  assert.equal((await database.db.selectFrom('users').select('id').where('email', 'like', 'eve%@m4.test').execute()).length, 0)
})

test('failed sign-ins sprayed at an email nobody has yet do not keep its person from signing up', async () => {
  const signIns = new SignInThrottle({ perAccountAddress: 2, perAccount: 3 })
  for (const address of ['198.51.100.21', '198.51.100.22']) {
    const attacker = callerAt(address, signIns)
    for (let i = 0; i < 2; i++) await refusal(attacker.signIn({ email: 'newhire@m3.test', password: `guess-${i}` }))
  }
  // The email is held back for sign-in now, everywhere…
  assert.equal((await refusal(callerAt('203.0.113.9', signIns).signIn({ email: 'newhire@m3.test', password: 'whatever-1' }))).code, 'TOO_MANY_REQUESTS')
  // …but the person it belongs to can still make the account.
  const made = await callerAt('203.0.113.9', signIns).signUp({ email: 'newhire@m3.test', password: 'newhire-password-1', displayName: 'New Hire', role: 'funder' })
  assert.equal(made.email, 'newhire@m3.test')
})

test('wrong passwords sent all at once are checked no more often than the throttle allows: at sign-in, at a sign-up that is a sign-in, at a password change', async () => {
  const account = await createAccount(database.db, { email: 'race@a.test', password: 'race-password-1', displayName: 'Race', role: 'funder', admin: false })
  // Tallies how each of 40 calls sent at once ended: the wrong-password answer means its password was checked.
  const burst = async (call: (i: number) => Promise<unknown>): Promise<Map<string, number>> => {
    const answers = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
      const r = await refusal(call(i))
      return r.message.replace(/\d+ s$/, 'N s')
    }))
    const tally = new Map<string, number>()
    for (const a of answers) tally.set(a, (tally.get(a) ?? 0) + 1)
    return tally
  }
  const held = 'too many sign-in attempts; try again in N s'

  const signIns = new SignInThrottle()
  const caller = callerAt('198.51.100.70', signIns)
  assert.deepEqual(await burst(async (i) => await caller.signIn({ email: 'race@a.test', password: `guess-${i}` })), new Map([['wrong email or password', 10], [held, 30]]))
  assert.equal((await refusal(caller.signIn({ email: 'race@a.test', password: 'race-password-1' }))).code, 'TOO_MANY_REQUESTS', 'the ten count as failures')

  const signUps = callerAt('198.51.100.71', new SignInThrottle())
  assert.deepEqual(await burst(async (i) => await signUps.signUp({ email: 'race@a.test', password: `guess-guess-${i}`, displayName: 'Eve', role: 'funder' })), new Map([['could not create this account; if one already exists for this email, sign in instead', 10], [held, 30]]))

  const changes = callerAt('198.51.100.72', new SignInThrottle(), { user: account })
  assert.deepEqual(await burst(async (i) => await changes.changePassword({ password: `guess-${i}`, newPassword: 'new-password-11' })), new Map([['your current password is not right', 10], [held, 30]]))
  assert.equal((await refusal(changes.changePassword({ password: 'race-password-1', newPassword: 'new-password-11' }))).code, 'TOO_MANY_REQUESTS')
  assert.deepEqual(await callerAt('203.0.113.72', new SignInThrottle()).signIn({ email: 'race@a.test', password: 'race-password-1' }), { ok: true }, 'the password was not changed')
})

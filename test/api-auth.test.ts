import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { TRPCClientError } from '@trpc/client'
import { Coordinator } from '@barnraise/coordinator'
import { tempDir } from './support/cluster.ts'
import { sessionClient } from './support/session-client.ts'

type Client = ReturnType<typeof sessionClient>

async function refusal (call: Promise<unknown>): Promise<string> {
  try {
    await call
  } catch (err) {
    assert.ok(err instanceof TRPCClientError, String(err))
    return (err.data as { code: string }).code
  }
  throw new Error('the call was allowed')
}

const RUN = '00000000-0000-4000-8000-000000000000'

/** Every procedure that changes something or reveals a lab's private view, with valid input. */
const protectedCalls: Array<[string, 'organizer' | 'lab_admin' | 'funder' | 'any', (c: Client) => Promise<unknown>]> = [
  ['runs.create', 'organizer', async (c) => await c.runs.create.mutate({ spec: { name: 'x', rounds: 1 } })],
  ['runs.setStatus', 'organizer', async (c) => await c.runs.setStatus.mutate({ id: RUN, action: 'start' })],
  ['nodes.revoke', 'lab_admin', async (c) => await c.nodes.revoke.mutate({ id: RUN })],
  ['labs.overview', 'lab_admin', async (c) => await c.labs.overview.query()],
  ['labs.createToken', 'lab_admin', async (c) => await c.labs.createToken.mutate({ maxUses: 1 })],
  ['labs.revokeToken', 'lab_admin', async (c) => await c.labs.revokeToken.mutate({ id: RUN })],
  ['pledges.create', 'funder', async (c) => await c.pledges.create.mutate({ runId: RUN, kind: 'usd', amount: 5 })],
  ['pledges.mine', 'any', async (c) => await c.pledges.mine.query()]
]

describe('roles are checked on the server for every protected procedure', () => {
  let coordinator: Coordinator
  const clients: Record<string, Client> = {}
  beforeAll(async () => {
    coordinator = await Coordinator.start({ dataDir: await tempDir('auth'), httpPort: 0, p2pPort: 0 })
    clients.anonymous = sessionClient(coordinator.url)
    clients.admin = sessionClient(coordinator.url)
    await clients.admin.auth.signUp.mutate({ email: 'first@example.org', password: 'first-password-1', displayName: 'First', role: 'funder', setupCode: coordinator.setupCode! })
    for (const role of ['organizer', 'lab_admin', 'funder'] as const) {
      clients[role] = sessionClient(coordinator.url)
      // Organizers are invited on a closed install (the default).
      const invite = role === 'organizer' ? (await clients.admin.people.invite.mutate({ role: 'organizer' })).code : undefined
      await clients[role].auth.signUp.mutate({ email: `${role}@example.org`, password: 'a-long-password', displayName: role, role, ...(role === 'lab_admin' ? { organization: 'Auth Lab' } : {}), ...(invite !== undefined ? { invite } : {}) })
    }
  })
  afterAll(async () => { await coordinator.stop() })

  test('the setup code makes the first account the admin; later ones get the role they chose or were invited to', async () => {
    assert.deepEqual((await clients.admin!.auth.me.query())?.roles, ['admin', 'organizer', 'lab_admin', 'funder'])
    assert.deepEqual((await clients.funder!.auth.me.query())?.roles, ['funder'])
    assert.equal((await clients.lab_admin!.auth.me.query())?.organizationName, 'Auth Lab')
    assert.equal(await clients.anonymous!.auth.me.query(), null)
  })

  for (const [name, role, call] of protectedCalls) {
    test(`${name}: refused without a session${role === 'any' ? '' : ' and with the wrong role'}`, async () => {
      assert.equal(await refusal(call(clients.anonymous!)), 'UNAUTHORIZED')
      if (role === 'any') return
      for (const other of ['organizer', 'lab_admin', 'funder'].filter((r) => r !== role)) {
        assert.equal(await refusal(call(clients[other]!)), 'FORBIDDEN', `${name} as ${other}`)
      }
    })
  }

  test('nothing was written by the refused calls', async () => {
    const db = coordinator.database.db
    assert.equal((await db.selectFrom('runs').selectAll().execute()).length, 0)
    assert.equal((await db.selectFrom('pledges').selectAll().execute()).length, 0)
    assert.equal((await db.selectFrom('enrollment_tokens').selectAll().execute()).length, 0)
  })

  test('sign-in checks the password; sign-out ends the session; duplicate emails are refused', async () => {
    const c = sessionClient(coordinator.url)
    await assert.rejects(c.auth.signIn.mutate({ email: 'funder@example.org', password: 'wrong-password' }), /wrong email or password/)
    await c.auth.signIn.mutate({ email: 'FUNDER@example.org', password: 'a-long-password' })
    assert.equal((await c.auth.me.query())?.email, 'funder@example.org')
    await c.auth.signOut.mutate()
    assert.equal(await c.auth.me.query(), null)
    await assert.rejects(c.auth.signUp.mutate({ email: 'funder@example.org', password: 'another-password', displayName: 'x', role: 'funder' }), /exists/)
    await assert.rejects(c.auth.signUp.mutate({ email: 'not-an-email', password: 'short', displayName: '', role: 'funder' }), /valid email/)
  })

  test('a lab admin creates a token and gets the exact join command; the secret is not listed later', async () => {
    const created = await clients.lab_admin!.labs.createToken.mutate({ maxUses: 2, label: 'rack 1' })
    assert.match(created.token, /^brt_/)
    assert.match(created.joinCommand, new RegExp(`^pnpm agent join --coordinator /ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/\\S+ --token ${created.token}$`))
    const overview = await clients.lab_admin!.labs.overview.query()
    assert.equal(overview.tokens.length, 1)
    assert.ok(!JSON.stringify(overview).includes(created.token))
  })

  test('an organizer launches a run, a funder pledges to it; bad input is refused and writes nothing', async () => {
    const organizer = clients.organizer!
    const badSpec = await organizer.runs.create.mutate({ spec: { name: '', rounds: 0, recipe: { seqLen: 2 } } }).then(() => undefined, (e: unknown) => e)
    assert.ok(badSpec instanceof TRPCClientError)
    const fields = (badSpec.data as { fields: Array<{ field: string }> }).fields.map((f) => f.field).sort()
    assert.deepEqual(fields, ['name', 'recipe.seqLen', 'rounds'])
    assert.equal((await clients.anonymous!.runs.list.query()).length, 0)

    const { id } = await organizer.runs.create.mutate({ spec: { name: 'pledged run', rounds: 3, model: { preset: 'tiny' }, fundingGoalUsd: 1000, computeGoalGpuHours: 10 } })
    const other = sessionClient(coordinator.url)
    const { code } = await clients.admin!.people.invite.mutate({ role: 'organizer' })
    await other.auth.signUp.mutate({ email: 'other-org@example.org', password: 'another-long-one', displayName: 'Other', role: 'organizer', invite: code })
    assert.equal(await refusal(other.runs.setStatus.mutate({ id, action: 'start' })), 'FORBIDDEN', 'only its organizer steers a run')
    assert.deepEqual(await organizer.runs.setStatus.mutate({ id, action: 'start' }), { id, status: 'running' })

    const funder = clients.funder!
    assert.equal(await refusal(funder.pledges.create.mutate({ runId: id, kind: 'usd', amount: -5 })), 'BAD_REQUEST')
    assert.equal(await refusal(funder.pledges.create.mutate({ runId: id, kind: 'usd', amount: Number.NaN })), 'BAD_REQUEST')
    assert.equal((await clients.anonymous!.pledges.forRun.query({ runId: id })).pledges.length, 0)
    await funder.pledges.create.mutate({ runId: id, kind: 'usd', amount: 250, note: 'for the GPUs' })
    // GPU-hours come from the pledger's organization's machines; this funder has none.
    assert.equal(await refusal(funder.pledges.create.mutate({ runId: id, kind: 'gpu_hours', amount: 4 })), 'PRECONDITION_FAILED')
    const totals = await clients.anonymous!.pledges.forRun.query({ runId: id })
    assert.equal(totals.pledgedUsd, 250)
    assert.equal(totals.pledgedGpuHours, 0)
    assert.equal(totals.fundingGoalUsd, 1000)
    assert.equal(totals.computeGoalGpuHours, 10)
    const mine = await funder.pledges.mine.query()
    assert.deepEqual(mine.map((p) => [p.kind, p.amount, p.runName]), [['usd', 250, 'pledged run']])
    // One person's pledges to a run are bounded: everyone who opens the run loads them.
    for (let i = 0; i < 19; i++) await funder.pledges.create.mutate({ runId: id, kind: 'usd', amount: 1 })
    const over = await funder.pledges.create.mutate({ runId: id, kind: 'usd', amount: 1 }).then(() => null, (err: unknown) => err as { message: string, data?: { appCode?: string } })
    assert.equal(over?.data?.appCode, 'ERR_QUOTA_EXCEEDED')
    assert.match(over!.message, /you have made 20 pledges to this run, the most one person may/)
    const listed = await clients.anonymous!.pledges.forRun.query({ runId: id })
    assert.equal(listed.pledgeCount, 20)
    assert.equal(listed.pledgedUsd, 269)
    await organizer.runs.setStatus.mutate({ id, action: 'stop' })
    assert.equal(await refusal(funder.pledges.create.mutate({ runId: id, kind: 'usd', amount: 1 })), 'CONFLICT', 'no pledges to a finished run')
  })
})

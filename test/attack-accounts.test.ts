import { test } from 'vitest'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCoordinator, tempDir } from './support/cluster.ts'
import { runCli } from './support/processes.ts'
import { sessionClient } from './support/session-client.ts'
import { refused } from './support/refusal.ts'
import { createRunViaCli, tinyRunSpec } from './support/runs.ts'

type Client = ReturnType<typeof sessionClient>

async function signUp (c: Client, input: Parameters<Client['auth']['signUp']['mutate']>[0]): Promise<unknown> {
  return await c.auth.signUp.mutate(input)
}

test('strangers cannot become admin, claim an organization by its name, or make themselves organizers', async () => {
  const coordinator = await startCoordinator()
  try {
    assert.ok(coordinator.setupCode !== null, 'a fresh install prints a setup code')
    const stranger = sessionClient(coordinator.url)
    assert.deepEqual(await stranger.auth.setupStatus.query(), { needsAdmin: true, openOrganizing: false })

    // 1. The first sign-up on a public install does not make the admin without the setup code.
    const noCode = await refused(signUp(stranger, { email: 'eve@evil.test', password: 'eve-password-1', displayName: 'Eve', role: 'organizer' }))
    assert.equal(noCode.appCode, 'ERR_SETUP_REQUIRED')
    const wrongCode = await refused(signUp(stranger, { email: 'eve@evil.test', password: 'eve-password-1', displayName: 'Eve', role: 'organizer', setupCode: 'guessed-code' }))
    assert.equal(wrongCode.appCode, 'ERR_INVALID_SETUP_CODE')
    assert.equal(await stranger.auth.me.query(), null, 'no session was made')

    const admin = sessionClient(coordinator.url)
    await signUp(admin, { email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'organizer', setupCode: coordinator.setupCode })
    assert.ok((await admin.auth.me.query())?.roles.includes('admin'))
    const reused = await refused(signUp(stranger, { email: 'eve@evil.test', password: 'eve-password-1', displayName: 'Eve', role: 'funder', setupCode: coordinator.setupCode }))
    assert.equal(reused.code, 'CONFLICT', 'the spent code makes nobody else admin')

    // 2. Naming an existing organization does not make you its lab admin.
    const lab = sessionClient(coordinator.url)
    await signUp(lab, { email: 'lab@hilltop.test', password: 'lab-password-1', displayName: 'Lin', role: 'lab_admin', organization: 'Hilltop Lab' })
    for (const name of ['Hilltop Lab', '  Hilltop Lab ']) {
      const claim = await refused(signUp(stranger, { email: 'eve@evil.test', password: 'eve-password-1', displayName: 'Eve', role: 'lab_admin', organization: name }))
      assert.equal(claim.appCode, 'ERR_NAME_TAKEN')
      assert.match(claim.message, /invitation/)
    }
    const funderClaim = await refused(signUp(stranger, { email: 'eve@evil.test', password: 'eve-password-1', displayName: 'Eve', role: 'funder', organization: 'Hilltop Lab' }))
    assert.equal(funderClaim.appCode, 'ERR_NAME_TAKEN')
    assert.equal(await stranger.auth.me.query(), null)

    // 3. Organizers are invited on a closed install; a lab admin cannot invite one, nor into another lab.
    const selfOrganizer = await refused(signUp(stranger, { email: 'eve@evil.test', password: 'eve-password-1', displayName: 'Eve', role: 'organizer' }))
    assert.equal(selfOrganizer.appCode, 'ERR_FORBIDDEN')
    assert.equal((await refused(lab.people.invite.mutate({ role: 'organizer' }))).code, 'FORBIDDEN')
    await signUp(stranger, { email: 'eve@evil.test', password: 'eve-password-1', displayName: 'Eve', role: 'lab_admin', organization: 'Eve Lab' })
    const hilltopId = (await lab.labs.overview.query()).organization.id
    assert.equal((await refused(stranger.people.invite.mutate({ role: 'lab_admin', organizationId: hilltopId }))).code, 'FORBIDDEN')
    assert.equal((await refused(stranger.people.setRole.mutate({ userId: (await stranger.auth.me.query())!.id, role: 'organizer', granted: true }))).code, 'FORBIDDEN')
    assert.deepEqual((await stranger.auth.me.query())?.roles, ['lab_admin'])

    // An invitation works once, for the role and organization it names.
    const invite = await lab.people.invite.mutate({ role: 'funder' })
    const colleague = sessionClient(coordinator.url)
    await signUp(colleague, { email: 'fay@hilltop.test', password: 'fay-password-1', displayName: 'Fay', role: 'lab_admin', organization: 'Anything', invite: invite.code })
    const fay = await colleague.auth.me.query()
    assert.deepEqual([fay?.roles, fay?.organizationName], [['funder'], 'Hilltop Lab'], 'the invitation, not the form, decides role and organization')
    const again = await refused(signUp(sessionClient(coordinator.url), { email: 'gus@evil.test', password: 'gus-password-1', displayName: 'Gus', role: 'funder', invite: invite.code }))
    assert.equal(again.code, 'BAD_REQUEST')
    assert.match(again.message, /not valid/)

    // A funder of the lab neither sees nor revokes its invitations.
    const open = await lab.people.invite.mutate({ role: 'lab_admin' })
    assert.deepEqual(await colleague.people.invitations.query(), [])
    assert.equal((await refused(colleague.people.revokeInvitation.mutate({ id: open.id }))).code, 'FORBIDDEN')
    assert.ok((await lab.people.invitations.query()).some((i) => i.id === open.id && !i.revoked))

    // An admin grants the organizer role; the invitation to organize works too.
    await admin.people.setRole.mutate({ userId: fay!.id, role: 'organizer', granted: true })
    assert.deepEqual((await colleague.auth.me.query())?.roles, ['funder', 'organizer'])
    const people = await admin.people.list.query()
    assert.equal(people.length, 4)
  } finally {
    await coordinator.stop()
  }
})

test('the operator makes the admin on the coordinator’s machine; passwords never go in argv; ownerless runs are the admin’s', async () => {
  const coordinator = await startCoordinator()
  try {
    const cli = 'coordinator/src/cli.ts'
    const dir = ['--data-dir', coordinator.dataDir]
    const argv = await runCli(cli, ['user', 'create', '--email', 'root@example.org', '--password', 'root-password-1', '--name', 'Root', '--admin', ...dir])
    assert.equal(argv.code, 2)
    assert.match(argv.output, /shell history/)

    const file = join(await tempDir('password'), 'password.txt')
    await writeFile(file, 'root-password-1\n', { mode: 0o600 })
    const made = await runCli(cli, ['user', 'create', '--email', 'root@example.org', '--password-file', file, '--name', 'Root', '--admin', ...dir])
    assert.equal(made.code, 0, made.output)
    assert.match(made.stdout, /roles: admin/)
    const noPassword = await runCli(cli, ['user', 'create', '--email', 'x@example.org', '--name', 'X', ...dir])
    assert.equal(noPassword.code, 2)
    assert.match(noPassword.output, /--password-stdin/)

    const admin = sessionClient(coordinator.url)
    await admin.auth.signIn.mutate({ email: 'root@example.org', password: 'root-password-1' })
    assert.deepEqual(await admin.auth.setupStatus.query(), { needsAdmin: false, openOrganizing: false })
    const { code } = await admin.people.invite.mutate({ role: 'organizer' })
    const organizer = sessionClient(coordinator.url)
    await signUp(organizer, { email: 'olu@runs.test', password: 'olu-password-1', displayName: 'Olu', role: 'organizer', invite: code })

    // A run made from the CLI without an owner is steered by the admin only.
    const ownerless = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ name: 'ownerless' }))
    assert.equal((await refused(organizer.runs.setStatus.mutate({ id: ownerless, action: 'pause' }))).code, 'FORBIDDEN')
    assert.equal((await organizer.runs.access.query({ id: ownerless })).canSteer, false)
    assert.equal((await admin.runs.access.query({ id: ownerless })).canSteer, true)
    assert.deepEqual(await admin.runs.setStatus.mutate({ id: ownerless, action: 'pause' }), { id: ownerless, status: 'paused' })

    // With --owner, the organizer steers it.
    const specFile = join(await tempDir('spec'), 'run.json')
    await writeFile(specFile, JSON.stringify(tinyRunSpec({ name: 'owned' })))
    const owned = await runCli(cli, ['run', 'create', '--spec', specFile, '--owner', 'olu@runs.test', ...dir])
    assert.equal(owned.code, 0, owned.output)
    const ownedId = /^run (\S+) /m.exec(owned.stdout)![1]!
    assert.equal((await organizer.runs.access.query({ id: ownedId })).canSteer, true)
    const strangerOwner = await runCli(cli, ['run', 'create', '--spec', specFile, '--owner', 'nobody@example.org', ...dir])
    assert.equal(strangerOwner.code, 2)
    assert.match(strangerOwner.output, /no account nobody@example.org/)
  } finally {
    await coordinator.stop()
  }
})

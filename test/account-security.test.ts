// A person's own defences for their account: changing the password (which ends every other
// session), signing out everywhere, and the operator setting a forgotten password on the
// coordinator's machine (the admin's too), all against a real coordinator process.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCoordinator, tempDir } from './support/cluster.ts'
import { runCli } from './support/processes.ts'
import { sessionClient } from './support/session-client.ts'
import { refused } from './support/refusal.ts'

test('a password change ends every other session; signing out everywhere ends them all; the operator sets a forgotten password', async () => {
  const coordinator = await startCoordinator()
  try {
    const laptop = sessionClient(coordinator.url)
    await laptop.auth.signUp.mutate({ email: 'ada@example.org', password: 'first-password-1', displayName: 'Ada', role: 'funder', setupCode: coordinator.setupCode! })
    const phone = sessionClient(coordinator.url)
    await phone.auth.signIn.mutate({ email: 'ada@example.org', password: 'first-password-1' })
    assert.equal((await phone.auth.me.query())?.email, 'ada@example.org')

    assert.deepEqual(await refused(laptop.auth.changePassword.mutate({ password: 'a-wrong-guess', newPassword: 'second-password-2' })), { code: 'BAD_REQUEST', appCode: 'ERR_INVALID_INPUT', message: 'your current password is not right' })
    assert.equal((await refused(laptop.auth.changePassword.mutate({ password: 'first-password-1', newPassword: 'short' }))).code, 'BAD_REQUEST')
    assert.equal((await refused(sessionClient(coordinator.url).auth.changePassword.mutate({ password: 'first-password-1', newPassword: 'second-password-2' }))).code, 'UNAUTHORIZED')
    assert.equal((await phone.auth.me.query())?.email, 'ada@example.org', 'refused changes end nothing')

    assert.deepEqual(await laptop.auth.changePassword.mutate({ password: 'first-password-1', newPassword: 'second-password-2' }), { ok: true })
    assert.equal((await laptop.auth.me.query())?.email, 'ada@example.org', 'the browser that changed it stays signed in')
    assert.equal(await phone.auth.me.query(), null, 'every other session ended')
    assert.equal((await refused(phone.auth.signIn.mutate({ email: 'ada@example.org', password: 'first-password-1' }))).message, 'wrong email or password')
    await phone.auth.signIn.mutate({ email: 'ada@example.org', password: 'second-password-2' })

    assert.deepEqual(await phone.auth.signOutEverywhere.mutate(), { ended: 2 })
    assert.equal(await phone.auth.me.query(), null)
    assert.equal(await laptop.auth.me.query(), null)

    // The admin forgot it: the operator sets it on the coordinator's machine.
    const cli = 'coordinator/src/cli.ts'
    const dir = ['--data-dir', coordinator.dataDir]
    await laptop.auth.signIn.mutate({ email: 'ada@example.org', password: 'second-password-2' })
    const argv = await runCli(cli, ['user', 'password', '--email', 'ada@example.org', '--password', 'third-password-3', ...dir])
    assert.equal(argv.code, 2)
    assert.match(argv.output, /shell history/)
    const file = join(await tempDir('password'), 'password.txt')
    await writeFile(file, 'third-password-3\n', { mode: 0o600 })
    const unknown = await runCli(cli, ['user', 'password', '--email', 'nobody@example.org', '--password-file', file, ...dir])
    assert.equal(unknown.code, 2)
    assert.match(unknown.output, /no account nobody@example\.org/)
    const set = await runCli(cli, ['user', 'password', '--email', 'ADA@example.org', '--password-file', file, ...dir])
    assert.equal(set.code, 0, set.output)
    assert.match(set.stdout, /password of ada@example\.org set; all its sessions ended/)
    assert.equal(await laptop.auth.me.query(), null, 'its sessions ended')
    await laptop.auth.signIn.mutate({ email: 'ada@example.org', password: 'third-password-3' })
    assert.equal((await laptop.auth.me.query())?.roles.includes('admin'), true)
  } finally {
    await coordinator.stop()
  }
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { startAgent, startCoordinator } from './support/cluster.ts'
import { sessionClient } from './support/session-client.ts'

test('a lab admin revokes a node: it is disconnected, refused, and cannot re-join', async () => {
  const coordinator = await startCoordinator()
  try {
    const admin = sessionClient(coordinator.url)
    await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'organizer' })
    const lab = sessionClient(coordinator.url)
    await lab.auth.signUp.mutate({ email: 'lab@example.org', password: 'lab-password-1', displayName: 'Lab', role: 'lab_admin', organization: 'Revoke Lab' })
    const stranger = sessionClient(coordinator.url)
    await stranger.auth.signUp.mutate({ email: 'other@example.org', password: 'other-password', displayName: 'Other', role: 'lab_admin', organization: 'Other Lab' })

    const { token } = await lab.labs.createToken.mutate({ maxUses: 1 })
    const agent = await startAgent({ coordinator: coordinator.multiaddr, token, args: ['--no-train'] })
    const node = (await lab.nodes.list.query({})).find((n) => n.peerId === agent.peerId)!
    assert.equal(node.organizationName, 'Revoke Lab')

    await assert.rejects(stranger.nodes.revoke.mutate({ id: node.id }), /no such node/, 'another lab cannot revoke it')
    await lab.nodes.revoke.mutate({ id: node.id })
    const code = await Promise.race([agent.process.exited, new Promise((resolve) => setTimeout(() => { resolve('still running') }, 30_000))])
    assert.equal(code, 3, agent.output())
    assert.match(agent.output(), /refused \((ERR_NOT_ENROLLED|ERR_NODE_REVOKED)\)/)
    const after = (await lab.nodes.list.query({})).find((n) => n.peerId === agent.peerId)!
    assert.equal(after.revoked, true)
    assert.equal(after.online, false)

    const again = await startAgent({ coordinator: coordinator.multiaddr, dataDir: agent.dataDir }).then(() => 'joined', (err: Error) => err.message)
    assert.match(again, /ERR_NODE_REVOKED/, 'its key alone no longer gets it back in')
  } finally {
    await coordinator.stop()
  }
})

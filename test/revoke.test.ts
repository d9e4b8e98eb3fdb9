import { test } from 'vitest'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { loadOrCreatePeerKey } from '@barnraise/protocol'
import { CoordinatorClient, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { startAgent, startCoordinator } from './support/cluster.ts'
import { spawnCli } from './support/processes.ts'
import { sessionClient } from './support/session-client.ts'
import { tinyRunSpec, waitForRun } from './support/runs.ts'

test('a lab admin revokes a node: it is disconnected, turned away at the handshake, and cannot re-join', async () => {
  const coordinator = await startCoordinator()
  try {
    const admin = sessionClient(coordinator.url)
    await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'organizer', setupCode: coordinator.setupCode! })
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
    assert.match(agent.output(), /refused \((ERR_NOT_ENROLLED|ERR_NODE_REVOKED|ERR_TURNED_AWAY)\)/)
    const after = (await lab.nodes.list.query({})).find((n) => n.peerId === agent.peerId)!
    assert.equal(after.revoked, true)
    assert.equal(after.online, false)
    const lastSeen = after.lastSeenAt

    // The node's own key, dialling as it would: the connection is closed before any protocol
    // is spoken, so the coordinator never reads a message from it (no refusal reply either).
    const { key } = await loadOrCreatePeerKey(join(agent.dataDir, 'peer.key'))
    const host = await createAgentHost(key)
    try {
      const client = new CoordinatorClient(host, parseCoordinatorAddress(coordinator.multiaddr))
      const attempt = await client.heartbeat({ type: 'heartbeat', status: 'idle' }).then(() => 'served', (err: unknown) => err)
      assert.notEqual(attempt, 'served')
      assert.ok(!(attempt instanceof RefusedError), `no protocol reply reached it: ${String(attempt)}`)
      assert.deepEqual(host.getConnections().filter((c) => c.status === 'open'), [], 'the coordinator closed the connection')
    } finally {
      await host.stop()
    }
    const still = (await lab.nodes.list.query({})).find((n) => n.peerId === agent.peerId)!
    assert.equal(still.lastSeenAt, lastSeen, 'nothing was written for the turned-away dial')
    assert.equal(still.online, false)

    // Restarting the agent on its data directory: turned away each time, it stops and says why.
    const again = spawnCli('node-agent/src/cli.ts', ['join', '--coordinator', coordinator.multiaddr, '--data-dir', agent.dataDir, '--no-train', '--heartbeat-interval', '1'])
    const againCode = await Promise.race([again.exited, new Promise((resolve) => setTimeout(() => { resolve('still running') }, 45_000))])
    await again.stop()
    assert.equal(againCode, 3, again.output())
    assert.match(again.output(), /refused \(ERR_TURNED_AWAY\).*revoked/, 'its key alone no longer gets it back in')
  } finally {
    await coordinator.stop()
  }
})

test('revoking a node that holds a unit expires it at once: the round closes without waiting for its deadline', async () => {
  const coordinator = await startCoordinator()
  try {
    const admin = sessionClient(coordinator.url)
    await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'organizer', setupCode: coordinator.setupCode! })
    const lab = sessionClient(coordinator.url)
    await lab.auth.signUp.mutate({ email: 'lab@example.org', password: 'lab-password-1', displayName: 'Lab', role: 'lab_admin', organization: 'Holding Lab' })
    const { token } = await lab.labs.createToken.mutate({ maxUses: 2 })
    // One machine trains; the other is online (heartbeats) but never asks for its unit.
    const worker = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'worker' })
    const holder = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'holder', args: ['--no-train'] })
    try {
      const run = await admin.runs.create.mutate({ spec: tinyRunSpec({ name: 'held run', rounds: 1, minNodes: 2, roundDeadlineSeconds: 3600 }), start: true })
      // The worker's report is in and the round still waits for the holder's unit.
      const deadline = Date.now() + 120_000
      for (;;) {
        const entries = await admin.ledger.entries.query({ runId: run.id })
        if (entries.some((e) => e.outcome === 'accepted' && e.peerId === worker.peerId)) break
        if (Date.now() > deadline) throw new Error('the worker never reported')
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
      assert.equal((await waitForRun(coordinator.url, run.id, () => true)).status, 'running', 'the round waits for the held unit')
      const node = (await lab.nodes.list.query({})).find((n) => n.peerId === holder.peerId)!
      await lab.nodes.revoke.mutate({ id: node.id })
      // Far inside the hour-long deadline: the expired unit no longer holds the round open.
      const done = await waitForRun(coordinator.url, run.id, (r) => r.status === 'completed', 60_000)
      assert.equal(done.round, 1)
      const entries = await admin.ledger.entries.query({ runId: run.id })
      assert.ok(!entries.some((e) => e.peerId === holder.peerId && e.outcome === 'accepted'), 'the revoked node earned nothing')
    } finally {
      await worker.stop()
      await holder.stop()
    }
  } finally {
    await coordinator.stop()
  }
})

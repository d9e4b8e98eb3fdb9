import { test } from 'vitest'
import assert from 'node:assert/strict'
import { startAgent, startCoordinator } from './support/cluster.ts'
import { sessionClient } from './support/session-client.ts'
import { tinyRunSpec, waitForRun } from './support/runs.ts'
import { allLedgerEntries } from './support/ledger-pages.ts'

/** Polls the ledger until `predicate` holds, failing with the rows seen. */
async function waitForLedger (client: ReturnType<typeof sessionClient>, runId: string, predicate: (peers: string[]) => boolean): Promise<string[]> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const rows = await allLedgerEntries(client, runId)
    const peers = rows.filter((e) => e.outcome === 'accepted').map((e) => e.peerId)
    if (predicate(peers)) return peers
    if (Date.now() > deadline) throw new Error(`timed out; accepted reports from ${JSON.stringify(peers)}`)
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

test('a lab that chose its runs is not drafted into a stranger’s run, and trains the run it chose', async () => {
  const coordinator = await startCoordinator()
  try {
    const admin = sessionClient(coordinator.url)
    await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'organizer', setupCode: coordinator.setupCode! })
    const organizer = sessionClient(coordinator.url)
    const { code } = await admin.people.invite.mutate({ role: 'organizer' })
    await organizer.auth.signUp.mutate({ email: 'org@example.org', password: 'organizer-pass-1', displayName: 'Olive Organizer', role: 'funder', invite: code })
    const lab = sessionClient(coordinator.url)
    await lab.auth.signUp.mutate({ email: 'lab@example.org', password: 'lab-password-1', displayName: 'Lab', role: 'lab_admin', organization: 'Picky Lab' })

    // The lab opts out of "every run" before its machine joins.
    const before = await lab.labs.setServing.mutate({ serves: 'chosen', runIds: [], organizerIds: [] })
    assert.equal(before.serves, 'chosen')
    await assert.rejects(lab.labs.setServing.mutate({ serves: 'chosen', runIds: ['00000000-0000-4000-8000-000000000000'], organizerIds: [] }), /does not exist/)
    const other = sessionClient(coordinator.url)
    await other.auth.signUp.mutate({ email: 'other@example.org', password: 'other-password', displayName: 'Other', role: 'lab_admin', organization: 'Other Lab' })
    const admin0 = await other.labs.serving.query()
    assert.equal(admin0.choices.serves, 'all', 'another lab’s choice is its own')

    const { token } = await lab.labs.createToken.mutate({ maxUses: 1 })
    const picky = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'picky' })
    const openToken = await coordinator.createToken('Open Lab')
    const open = await startAgent({ coordinator: coordinator.multiaddr, token: openToken, name: 'open' })
    try {
      const run = await organizer.runs.create.mutate({ spec: tinyRunSpec({ name: 'stranger run', rounds: 2, minNodes: 1, maxNodes: 8 }), start: true })
      await waitForRun(coordinator.url, run.id, (r) => r.status === 'completed', 240_000)
      const peers = await waitForLedger(admin, run.id, (p) => p.length >= 2)
      assert.ok(peers.includes(open.peerId), 'the open lab trained')
      assert.ok(!peers.includes(picky.peerId), 'the picky lab was never given a unit of a run it did not choose')

      // Choosing the organizer serves her next run.
      const choices = await lab.labs.serving.query()
      const olive = choices.candidates.organizers.find((o) => o.displayName === 'Olive Organizer')
      assert.ok(olive !== undefined)
      assert.ok(!JSON.stringify(choices.candidates).includes('org@example.org'), 'organizers are listed by name, not email')
      await lab.labs.setServing.mutate({ serves: 'chosen', runIds: [], organizerIds: [olive.id] })
      const second = await organizer.runs.create.mutate({ spec: tinyRunSpec({ name: 'chosen run', rounds: 2, minNodes: 2, maxNodes: 8 }), start: true })
      await waitForRun(coordinator.url, second.id, (r) => r.status === 'completed', 240_000)
      const secondPeers = await waitForLedger(admin, second.id, (p) => p.includes(picky.peerId))
      assert.ok(secondPeers.includes(open.peerId))
    } finally {
      await picky.stop()
      await open.stop()
    }
  } finally {
    await coordinator.stop()
  }
})

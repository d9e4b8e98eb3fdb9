import { test } from 'vitest'
import assert from 'node:assert/strict'
import { parseReportMetadata } from '@barnraise/protocol'
import type { LedgerEntry } from '@barnraise/protocol'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { apiClient } from './support/api-client.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'

// Overlapped rounds between real processes: each round's units train from the checkpoint one
// outer step old while the round before collects, and the coordinator applies them to the newer
// one. One agent is killed mid-run and started again on its data directory.
test('an overlapped run trains from the base one step old, survives a node restarting mid-round, and its loss falls', async () => {
  const coordinator = await startCoordinator()
  const agents: RunningAgent[] = []
  try {
    const token = await coordinator.createToken('Overlap Lab', { uses: 2 })
    for (let i = 0; i < 2; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `overlap-${i}` }))
    const spec = tinyRunSpec({ overlap: 'delayed', minNodes: 2, rounds: 7, recipe: { innerSteps: 12, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2, outerLr: 0.7, outerMomentum: 0.5 } })
    const runId = await createRunViaCli(coordinator.dataDir, spec)
    const logs = (): Record<string, () => string> => ({ coordinator: coordinator.process.output, 'agent 0': agents[0]!.output, 'agent 1': agents[1]!.output })

    // Mid-run, once round 2 has closed, agent 1 dies (in the middle of its next unit) and comes back.
    await waitForRun(coordinator.url, runId, (r) => r.round >= 2, undefined, logs())
    const restartedAt = Date.now()
    await agents[1]!.stop()
    agents[1] = await startAgent({ coordinator: coordinator.multiaddr, dataDir: agents[1]!.dataDir, name: 'overlap-1' })
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', undefined, logs())

    const detail = await apiClient(coordinator.url).runs.get.query({ id: runId })
    const checkpoints = detail.checkpoints
    assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss! - 0.1, `validation loss fell: ${checkpoints.map((c) => c.valLoss).join(' → ')}`)
    const checkpointOf = new Map(checkpoints.map((c) => [c.round, c.sha256]))
    const closed = detail.rounds.filter((r) => r.status === 'closed')
    assert.deepEqual(closed.map((r) => r.number), [1, 2, 3, 4, 5, 6, 7], `every round closed: ${JSON.stringify(detail.rounds.map((r) => [r.number, r.status, r.closeReason]))}`)
    let stale = 0
    for (const r of closed) {
      if (r.number === 1) continue
      // Every outer step was applied to the newest checkpoint, round n − 1's.
      assert.equal(r.appliedTo, checkpointOf.get(r.number - 1), `round ${r.number} was applied to the newest checkpoint`)
      // Round n trained from round n − 2's checkpoint (the initial one for round 2), opened while
      // round n − 1 still collected; or, where round n − 1 had finished by the time round n − 2
      // closed (one engine step closes both), from round n − 1's like a round without overlap.
      const before = closed.find((p) => p.number === r.number - 1)!
      if (r.baseCheckpoint === checkpointOf.get(r.number - 2)) {
        stale++
        assert.ok(Date.parse(r.openedAt) < Date.parse(before.closedAt!), `round ${r.number} opened before round ${before.number} closed`)
      } else {
        assert.equal(r.baseCheckpoint, checkpointOf.get(r.number - 1), `round ${r.number} trained from one of the two newest checkpoints`)
      }
    }
    assert.ok(stale >= 3, `half the rounds or more trained from the base one outer step old: ${stale} of 6`)

    // Both nodes' reports were accepted in every round, the restarted one's after its restart too.
    const ledger = await getJson<LedgerEntry[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    const accepted = ledger.filter((e) => e.outcome === 'accepted')
    assert.equal(accepted.length, 14, `two reports a round: ${JSON.stringify(ledger.map((e) => [e.round, e.peerId.slice(-6), e.outcome, e.reason]))}`)
    const restarted = accepted.filter((e) => e.peerId === agents[1]!.peerId && Date.parse(e.createdAt!) > restartedAt)
    assert.ok(restarted.length >= 2, 'the restarted node reported again')
    for (const e of accepted) assert.equal(parseReportMetadata(e.metadata!)!.round, e.round)

    // The node that stayed rebuilt bases from the round's int8 mean (fewer bytes than its two
    // reports) instead of downloading the model, and the rebuilt bases hashed right.
    assert.match(agents[0]!.output(), /base rebuilt from the round's int8 mean \(\d+ KiB instead of a \d+ KiB model\)/)
  } finally {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    await coordinator.stop()
  }
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import type { LedgerEntry } from '@barnraise/protocol'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { startHostile } from './support/hostile.ts'
import type { Spawned } from './support/processes.ts'
import { apiClient } from './support/api-client.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'

// Screening in an overlapped run, between real processes: two rounds take reports at once, each
// judged by its own round's screen (the round before's accepted reports give the direction; a
// report accepted in the older round still reaches the newer one's replay checks). A sign-flipper
// among three honest nodes earns nothing in any round; every honest report is accepted.
test('an overlapped run screens each round on its own: a sign-flipper earns nothing, honest nodes everything, and the loss falls', async () => {
  const coordinator = await startCoordinator()
  const agents: RunningAgent[] = []
  let flipper: { peerId: string, proc: Spawned } | undefined
  try {
    const token = await coordinator.createToken('Overlap Screen Lab', { uses: 4 })
    for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `honest-${i}` }))
    flipper = await startHostile('flip', coordinator.multiaddr, token)
    const spec = tinyRunSpec({
      overlap: 'delayed', minNodes: 4, rounds: 6, codec: 'fp32', roundDeadlineSeconds: 90,
      recipe: { innerSteps: 10, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2, outerLr: 0.7, outerMomentum: 0.5 },
      defences: { screening: true }
    })
    const runId = await createRunViaCli(coordinator.dataDir, spec)
    const logs = { coordinator: coordinator.process.output, flipper: flipper.proc.output, ...Object.fromEntries(agents.map((a, i) => [`honest ${i}`, a.output])) }
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000, logs)

    const detail = await apiClient(coordinator.url).runs.get.query({ id: runId })
    assert.deepEqual(detail.rounds.filter((r) => r.status === 'closed').map((r) => r.number), [1, 2, 3, 4, 5, 6])
    const checkpointOf = new Map(detail.checkpoints.map((c) => [c.round, c.sha256]))
    const stale = detail.rounds.filter((r) => r.number > 2 && r.baseCheckpoint === checkpointOf.get(r.number - 2)).length
    assert.ok(stale >= 1, 'rounds overlapped: some trained from the base one outer step old')
    const checkpoints = detail.checkpoints
    assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss! - 0.1, `validation loss fell: ${checkpoints.map((c) => c.valLoss).join(' → ')}`)

    const ledger = await getJson<LedgerEntry[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    const of = (peerId: string): LedgerEntry[] => ledger.filter((e) => e.peerId === peerId)
    const flips = of(flipper.peerId)
    assert.equal(flips.filter((e) => e.outcome === 'accepted').length, 0, 'the flipper earned nothing')
    assert.ok(flips.length >= 3, `the flipper reported in most rounds: ${flips.length}`)
    // Against the run's direction, uphill on held-out data, or (once flagged) quarantined.
    for (const e of flips) assert.match(e.reason ?? '', /^(ERR_UNRELATED|ERR_HARMFUL|ERR_QUARANTINED)/, `round ${e.round}: ${e.reason}`)
    for (const a of agents) {
      const rows = of(a.peerId)
      assert.ok(rows.length >= 5 && rows.every((e) => e.outcome === 'accepted'), `honest ${a.peerId}: ${rows.map((e) => `${e.round} ${e.reason ?? e.outcome}`).join(', ')}`)
    }
  } finally {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    await flipper?.proc.stop()
    await coordinator.stop()
  }
})

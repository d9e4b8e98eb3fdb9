import { test } from 'vitest'
import assert from 'node:assert/strict'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { startHostile } from './support/hostile.ts'
import type { Spawned } from './support/processes.ts'
import { apiClient } from './support/api-client.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'

interface Row { outcome: string, round: number, peerId: string, tokens: number, reason: string | null }

// Redundancy in an overlapped run, between real processes: a node whose first report of a pair
// is held trains its next unit at once (from the base one outer step old), and the pair is
// compared when its twin reports, while the next round already collects. Two twins of a round
// trained from the same base, so honest pairs agree to the byte and a sign-flipper's pair does not.
test('an overlapped run with every unit doubled: honest pairs agree and are credited, the flipper\'s pairs are refused, the run finishes', async () => {
  const coordinator = await startCoordinator()
  const agents: RunningAgent[] = []
  let flipper: Spawned | undefined
  try {
    const token = await coordinator.createToken('Overlap Twin Lab', { uses: 4 })
    for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `honest-${i}` }))
    const started = await startHostile('flip', coordinator.multiaddr, token, 'flipper')
    flipper = started.proc
    const flipperId = started.peerId
    const spec = tinyRunSpec({
      overlap: 'delayed', minNodes: 4, maxNodes: 4, rounds: 4, codec: 'int8', roundDeadlineSeconds: 90,
      recipe: { innerSteps: 6, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2 },
      defences: { redundancy: 0.5 }
    })
    const runId = await createRunViaCli(coordinator.dataDir, spec)
    const logs = { coordinator: coordinator.process.output, flipper: flipper.output, ...Object.fromEntries(agents.map((a, i) => [`honest ${i}`, a.output])) }
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000, logs)

    const detail = await apiClient(coordinator.url).runs.get.query({ id: runId })
    assert.deepEqual(detail.rounds.filter((r) => r.status === 'closed').map((r) => r.number), [1, 2, 3, 4])
    const checkpointOf = new Map(detail.checkpoints.map((c) => [c.round, c.sha256]))
    assert.ok(detail.rounds.some((r) => r.number > 2 && r.baseCheckpoint === checkpointOf.get(r.number - 2)), 'rounds overlapped: some trained from the base one outer step old')

    const ledger = await getJson<Row[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    for (let round = 1; round <= 4; round++) {
      const rows = ledger.filter((r) => r.round === round)
      assert.equal(rows.length, 4, `round ${round}: one verdict per unit: ${JSON.stringify(rows)}`)
      const disputed = rows.filter((r) => r.outcome === 'refused')
      assert.equal(disputed.length, 2, `round ${round}: ${rows.map((r) => r.reason ?? r.outcome).join(' | ')}`)
      assert.ok(disputed.some((r) => r.peerId === flipperId), `round ${round}: the flipper is in the disputed pair`)
      for (const r of disputed) {
        assert.match(r.reason ?? '', /^ERR_REDUNDANCY_MISMATCH: /)
        assert.equal(r.tokens, 0)
      }
      const credited = rows.filter((r) => r.outcome === 'accepted')
      assert.equal(credited.length, 2, `round ${round}: the honest pair trained the same data from the same base to the same bytes`)
      assert.ok(credited.every((r) => r.peerId !== flipperId && r.tokens > 0))
    }
    assert.ok(detail.checkpoints.at(-1)!.valLoss! < detail.checkpoints[0]!.valLoss!, `the honest pairs still train the model: ${detail.checkpoints.map((c) => c.valLoss).join(' → ')}`)
    const held = agents.flatMap((a) => a.output().split('\n')).filter((l) => /report held until a second node's copy of this unit reports/.test(l))
    assert.ok(held.length >= 1, 'the first of a pair to report is told it is held')
  } finally {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    await flipper?.stop()
    await coordinator.stop()
  }
})

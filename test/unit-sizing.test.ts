import { test } from 'vitest'
import assert from 'node:assert/strict'
import type { LedgerEntry } from '@barnraise/protocol'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { startHostile } from './support/hostile.ts'
import type { Spawned } from './support/processes.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

// Units sized by throughput between real processes: an agent and an honest one four times
// slower. After the first round each gets the run's inner steps scaled by its measured speed,
// so the fast one trains more tokens a round than the slow one; both deltas fold by their tokens.
test('a run sized by throughput gives a fast node more steps a round than a slow one, and both are credited for what they trained', async () => {
  const coordinator = await startCoordinator()
  let agent: RunningAgent | undefined
  let slow: { peerId: string, proc: Spawned } | undefined
  try {
    const token = await coordinator.createToken('Mixed Speeds Lab', { uses: 2 })
    agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'fast' })
    slow = await startHostile('slow', coordinator.multiaddr, token, 'slow')
    const spec = tinyRunSpec({ unitSizing: 'throughput', minNodes: 2, rounds: 4, recipe: { innerSteps: 8, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2 } })
    const runId = await createRunViaCli(coordinator.dataDir, spec)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', undefined, { coordinator: coordinator.process.output, fast: agent.output, slow: slow.proc.output })

    const ledger = await getJson<LedgerEntry[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    assert.ok(ledger.every((e) => e.outcome === 'accepted'), JSON.stringify(ledger.map((e) => [e.round, e.outcome, e.reason])))
    const tokensOf = (peerId: string, round: number): number => ledger.find((e) => e.peerId === peerId && e.round === round)?.tokens ?? 0
    // Round 1: nobody measured yet, the run's 8 steps each (8 × 4 × 32 tokens).
    assert.equal(tokensOf(agent.peerId, 1), 1024)
    assert.equal(tokensOf(slow.peerId, 1), 1024)
    for (let round = 2; round <= 4; round++) {
      const fast = tokensOf(agent.peerId, round)
      const laptop = tokensOf(slow.peerId, round)
      assert.ok(fast > 1024 && laptop < 1024, `round ${round}: the fast node trained ${fast} tokens, the slow one ${laptop}`)
      assert.ok(fast <= 4 * 1024 && laptop >= 1024 / 4, 'within ¼× and 4× of the run\'s unit')
    }
    const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
    assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss!, 'the loss fell')
  } finally {
    await agent?.stop()
    await slow?.proc.stop()
    await coordinator.stop()
  }
})

import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { startHostile } from './support/hostile.ts'
import type { Spawned } from './support/processes.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

interface Row { outcome: string, round: number, peerId: string, tokens: number, reason: string | null }

/** What a finished run of three honest agents and a sign-flipper, every unit doubled, shows. */
interface FlipperRun { coordinator: Awaited<ReturnType<typeof startCoordinator>>, runId: string, ledger: Row[], flipperId: string, agents: RunningAgent[] }

/**
 * Three honest agents and a sign-flipper (signing `claim` as its executor when given) on four
 * nodes with half the units doubled: two pairs, every node in one, partners changing by round.
 * Runs `check` on the completed run, with every process's output on a failure.
 */
async function withFlipperRun (rounds: number, claim: 'torch-cpu' | undefined, check: (run: FlipperRun) => Promise<void>, options: { coordinatorArgs?: string[], screening?: boolean } = {}): Promise<void> {
  const coordinator = await startCoordinator({ args: options.coordinatorArgs ?? [] })
  const agents: RunningAgent[] = []
  let flipper: Spawned | undefined
  try {
    const token = await coordinator.createToken('Twin Lab', { uses: 4 })
    for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `honest-${i}` }))
    const started = await startHostile('flip', coordinator.multiaddr, token, 'flipper', claim)
    flipper = started.proc
    const spec = tinyRunSpec({
      minNodes: 4, maxNodes: 4, rounds, codec: 'int8', roundDeadlineSeconds: 90,
      recipe: { innerSteps: 6, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2 },
      defences: { redundancy: 0.5, screening: options.screening ?? false }
    })
    const runId = await createRunViaCli(coordinator.dataDir, spec)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 180_000)
    const ledger = await getJson<Row[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    await check({ coordinator, runId, ledger, flipperId: started.peerId, agents })
  } catch (err) {
    const tail = (text: string): string => text.split('\n').slice(-30).join('\n')
    throw new Error(`${(err as Error).message}\n--- coordinator ---\n${tail(coordinator.process.output())}\n--- flipper ---\n${tail(flipper?.output() ?? '')}\n${agents.map((a) => `--- honest ${a.peerId} ---\n${tail(a.output())}`).join('\n')}`)
  } finally {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    await flipper?.stop()
    await coordinator.stop()
  }
}

describe('redundancy sampling', () => {
  test('every unit doubled: honest pairs agree and are credited; each pair with the sign-flipper disagrees, and both earn nothing', async () => {
    await withFlipperRun(3, undefined, async ({ coordinator, runId, ledger, flipperId, agents }) => {
      for (let round = 1; round <= 3; round++) {
        const rows = ledger.filter((r) => r.round === round)
        assert.equal(rows.length, 4, `round ${round}: one verdict per unit: ${JSON.stringify(rows)}`)
        const disputed = rows.filter((r) => r.outcome === 'refused')
        // The flipper and whoever shared its unit; nothing tells the coordinator which of the two lied.
        assert.equal(disputed.length, 2, `round ${round}: ${rows.map((r) => r.reason ?? r.outcome).join(' | ')}`)
        assert.ok(disputed.some((r) => r.peerId === flipperId), `round ${round}: the flipper is in the disputed pair`)
        for (const r of disputed) {
          assert.match(r.reason ?? '', /^ERR_REDUNDANCY_MISMATCH: this unit was also trained by node \S+ from the same data, seed and recipe on the same class of device \(typescript\), and the two pseudo-gradients differ by 2\d\d\.\d\d% \(at most \d+\.\d\d% allowed\)/)
          assert.equal(r.tokens, 0)
        }
        // The honest pair trained the same data to the same bytes: both credited.
        const credited = rows.filter((r) => r.outcome === 'accepted')
        assert.equal(credited.length, 2)
        assert.ok(credited.every((r) => r.peerId !== flipperId && r.tokens > 0))
      }
      const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
      assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss!, 'the honest pairs still train the model')
      const held = agents.flatMap((a) => a.output().split('\n')).filter((l) => /report held until a second node's copy of this unit reports/.test(l))
      assert.ok(held.length >= 1, 'the first of a pair to report is told it is held')
    })
  })

  test('a flipper that signs another executor is still compared: across classes the two must point the same way, and a flip does not', async () => {
    // Trained by the TypeScript trainer, signed as torch on a CPU only it claims: a class of its own.
    await withFlipperRun(2, 'torch-cpu', async ({ ledger, flipperId }) => {
      for (let round = 1; round <= 2; round++) {
        const disputed = ledger.filter((r) => r.round === round && r.outcome === 'refused')
        assert.equal(disputed.length, 2, `round ${round}: ${ledger.filter((r) => r.round === round).map((r) => r.reason ?? r.outcome).join(' | ')}`)
        assert.ok(disputed.some((r) => r.peerId === flipperId))
        for (const r of disputed) {
          assert.match(r.reason ?? '', /^ERR_REDUNDANCY_MISMATCH: .* on another class of device \((typescript and torch-cpu:hostile|torch-cpu:hostile and typescript): their direction and size must agree\), and the two pseudo-gradients differ by 2\d\d\.\d\d% \(at most 100\.00% allowed\)/)
          assert.equal(r.tokens, 0)
        }
      }
    })
  })

  test('a model scored by nodes, but with no scorers from other labs online: its rounds double units instead, and the sign-flipper earns nothing', async () => {
    // --score-max-params 0 makes the tiny model one that nodes score; all four nodes are of one
    // lab, so no report can find two scorers from other labs.
    await withFlipperRun(2, undefined, async ({ ledger, flipperId, agents }) => {
      for (let round = 1; round <= 2; round++) {
        const rows = ledger.filter((r) => r.round === round)
        assert.equal(rows.length, 4, `round ${round}: one verdict per unit, twins included: ${JSON.stringify(rows)}`)
        const flips = rows.filter((r) => r.peerId === flipperId)
        assert.ok(flips.length === 1 && flips[0]!.outcome === 'refused' && flips[0]!.tokens === 0, `round ${round}: ${JSON.stringify(flips)}`)
        // An honest report is refused only as the flipper's twin; never as a copy of its own twin
        // (the screen's copy check knows twins answer one unit).
        for (const r of rows.filter((r) => r.peerId !== flipperId && r.outcome !== 'accepted')) assert.match(r.reason ?? '', /^ERR_REDUNDANCY_MISMATCH: /, `round ${round}`)
      }
      // The screen may refuse the flipper before its twin reports; in round 1 it has nothing to go by.
      assert.ok(ledger.some((r) => r.round === 1 && /^ERR_REDUNDANCY_MISMATCH: /.test(r.reason ?? '')), ledger.map((r) => r.reason ?? r.outcome).join(' | '))
      const held = agents.flatMap((a) => a.output().split('\n')).filter((l) => /report held until a second node's copy of this unit reports/.test(l))
      assert.ok(held.length >= 2, 'each round\'s first twin to report is held for the second')
      for (const a of agents) assert.doesNotMatch(a.output(), /scored another node's report/, 'nobody was handed a scoring task')
    }, { coordinatorArgs: ['--score-max-params', '0'], screening: true })
  })

  test('a report that names no executor is refused in a run that doubles units, whichever unit it answers', async () => {
    const coordinator = await startCoordinator()
    let honest: RunningAgent | undefined
    let unnamed: Spawned | undefined
    try {
      const token = await coordinator.createToken('Twin Lab', { uses: 2 })
      honest = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'honest' })
      // Trains honestly and signs the v1 form, which has no executor.
      const started = await startHostile('slow', coordinator.multiaddr, token, 'unnamed', 'none')
      unnamed = started.proc
      const spec = tinyRunSpec({
        minNodes: 2, maxNodes: 2, rounds: 1, codec: 'int8', roundDeadlineSeconds: 60,
        recipe: { innerSteps: 2, batchSize: 2, seqLen: 16, innerLr: 0.01, warmupSteps: 1 },
        defences: { redundancy: 0.5 }
      })
      const runId = await createRunViaCli(coordinator.dataDir, spec)
      await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 120_000)
      const ledger = await getJson<Row[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
      const theirs = ledger.filter((r) => r.peerId === started.peerId)
      assert.ok(theirs.length >= 1, JSON.stringify(ledger))
      for (const r of theirs) {
        assert.equal(r.outcome, 'refused')
        assert.match(r.reason ?? '', /^ERR_WRONG_SHAPE: this run checks doubled units against each other, so a report must name its executor/)
      }
      assert.ok(ledger.some((r) => r.peerId !== started.peerId && r.outcome === 'accepted'), 'the honest twin is accepted alone')
    } finally {
      await honest?.stop()
      await unnamed?.stop()
      await coordinator.stop()
    }
  })
})

import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { startHostile } from './support/hostile.ts'
import type { Spawned } from './support/processes.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

interface Row { outcome: string, round: number, peerId: string, reason: string | null, score: number | null }

describe('scoring by nodes', () => {
  test('a model too large for the coordinator to score: each report is held until two other nodes score it, the scores reach the ledger, and a sign-flipper still earns nothing after round 1', async () => {
    // --score-max-params 0 makes the tiny model "too large", so this machine can run it.
    const coordinator = await startCoordinator({ args: ['--score-max-params', '0'] })
    const agents: RunningAgent[] = []
    let flipper: Spawned | undefined
    try {
      // Four labs: a report's two scorers come from two labs other than its producer's. One
      // honest node trains and scores with the torch executor (its PyTorch child on the CPU), the
      // others with TypeScript: a report it scores beside one of them is scored only if the two
      // executors' losses agree to 0.1% of the base loss.
      for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken(`Scoring Lab ${i}`), name: `honest-${i}`, ...(i === 0 ? { args: ['--executor', 'torch', '--device', 'cpu'] } : {}) }))
      assert.match(agents[0]!.output(), /agent: executor torch-cpu: PyTorch/)
      const started = await startHostile('flip', coordinator.multiaddr, await coordinator.createToken('Flipper Lab'), 'flipper')
      flipper = started.proc
      const flipperId = started.peerId
      const spec = tinyRunSpec({
        minNodes: 4, maxNodes: 4, rounds: 3, codec: 'fp32', roundDeadlineSeconds: 90,
        recipe: { innerSteps: 8, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2 },
        defences: { screening: true }
      })
      const runId = await createRunViaCli(coordinator.dataDir, spec)
      await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 180_000)

      const ledger = await getJson<Row[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
      for (const a of agents) {
        const rows = ledger.filter((r) => r.peerId === a.peerId)
        assert.equal(rows.length, 3, `honest ${a.peerId}: ${JSON.stringify(rows)}`)
        for (const r of rows) {
          assert.equal(r.outcome, 'accepted', `honest ${a.peerId} round ${r.round}: ${r.reason}`)
          assert.ok(r.score !== null && Number.isFinite(r.score), `round ${r.round}: scored by nodes (${r.score})`)
        }
        // It scored others' reports, and said so.
        assert.match(a.output(), /scored another node's report: held-out loss \d\.\d{4} → \d\.\d{4} \(reversed \d\.\d{4}\)/)
      }
      // The torch node measured in its child: the folder its files went to (and were removed from).
      assert.deepEqual(readdirSync(join(agents[0]!.dataDir, 'runs', runId, 'scoring')), [])
      for (const a of agents.slice(1)) assert.equal(existsSync(join(a.dataDir, 'runs', runId, 'scoring')), false, 'TypeScript scorers write no files')
      const flips = ledger.filter((r) => r.peerId === flipperId && r.round > 1)
      assert.ok(flips.length >= 2 && flips.every((r) => r.outcome === 'refused'), `the flipper after round 1: ${JSON.stringify(flips)}`)
      const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
      assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss!, 'the loss fell')
    } catch (err) {
      const tail = (text: string): string => text.split('\n').slice(-25).join('\n')
      throw new Error(`${(err as Error).message}\n--- coordinator ---\n${tail(coordinator.process.output())}\n--- flipper ---\n${tail(flipper?.output() ?? '')}\n${agents.map((a) => `--- honest ${a.peerId} ---\n${tail(a.output())}`).join('\n')}`)
    } finally {
      await Promise.all(agents.map(async (a) => { await a.stop() }))
      await flipper?.stop()
      await coordinator.stop()
    }
  })
})

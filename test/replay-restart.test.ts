import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { startHostile } from './support/hostile.ts'
import type { Spawned } from './support/processes.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'

interface Row { outcome: string, round: number, peerId: string, reason: string | null }

describe('screening across a coordinator restart', () => {
  test('a node that replays its first delta is refused as a replay in every later round, before and after the coordinator is killed and restarted', async () => {
    let coordinator: RunningCoordinator = await startCoordinator()
    const dataDir = coordinator.dataDir
    const agents: RunningAgent[] = []
    let replayer: Spawned | undefined
    try {
      const token = await coordinator.createToken('Replay Lab', { uses: 4 })
      for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `honest-${i}` }))
      const started = await startHostile('replay', coordinator.multiaddr, token, 'replayer')
      replayer = started.proc
      const replayerId = started.peerId
      const spec = tinyRunSpec({
        minNodes: 4, maxNodes: 4, rounds: 6, codec: 'fp32', roundDeadlineSeconds: 60,
        recipe: { innerSteps: 6, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2 },
        defences: { screening: true }
      })
      const runId = await createRunViaCli(dataDir, spec)
      // Kill the coordinator once two rounds are folded; the restart must remember them.
      const killedAt = (await waitForRun(coordinator.url, runId, (r) => r.round >= 2, 120_000)).round
      const base = coordinator.url
      coordinator.process.child.kill('SIGKILL')
      await coordinator.process.exited
      coordinator = await startCoordinator({ dataDir, env: { BARNRAISE_LOG: 'info' }, args: ['--http-port', new URL(base).port, '--p2p-port', coordinator.multiaddr.split('/')[4]!] })
      await waitForRun(base, runId, (r) => r.status === 'completed', 240_000)

      const ledger = await getJson<Row[]>(base, `api/runs/${runId}/ledger.json`)
      const mine = ledger.filter((r) => r.peerId === replayerId)
      assert.deepEqual(mine.filter((r) => r.outcome === 'accepted').map((r) => r.round), [1], 'only its first, honest, report counted')
      const after = mine.filter((r) => r.round > killedAt)
      assert.ok(after.length >= 2, `it reported after the restart: ${JSON.stringify(mine)}`)
      for (const r of mine.filter((x) => x.round > 1)) assert.match(r.reason ?? '', /^ERR_REPLAYED: the pseudo-gradient repeats one accepted in round 1 \(cosine 1\.000\)/, `round ${r.round}`)
      assert.match(coordinator.process.output(), /screening history restored/, 'the restarted coordinator read the stored sketches')
      for (const a of agents) assert.ok(ledger.filter((r) => r.peerId === a.peerId).every((r) => r.outcome === 'accepted'), `honest ${a.peerId} was accepted throughout`)
    } catch (err) {
      const tail = (text: string): string => text.split('\n').slice(-30).join('\n')
      throw new Error(`${(err as Error).message}\n--- coordinator ---\n${tail(coordinator.process.output())}\n--- replayer ---\n${tail(replayer?.output() ?? '')}`)
    } finally {
      await Promise.all(agents.map(async (a) => { await a.stop() }))
      await replayer?.stop()
      await coordinator.stop()
    }
  })
})

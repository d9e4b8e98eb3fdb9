import { test } from 'vitest'
import assert from 'node:assert/strict'
import { encodedByteLength, parseLlamaConfig } from '@barnraise/protocol'
import { paramSetFromSafetensors } from '@barnraise/trainer'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

// `broadcast: 'sparse'` between real processes: each round's mean goes out as one topk payload
// (plus the coordinator's error feedback), the agents rebuild every base from it, and the
// coordinator's residual survives a kill -9 and a restart.
test('a sparse broadcast: agents rebuild each base from the round\'s topk mean, and the coordinator carries its residual across a restart', async () => {
  let coordinator: RunningCoordinator = await startCoordinator({ env: { BARNRAISE_LOG: 'info' } })
  const dataDir = coordinator.dataDir
  const agents: RunningAgent[] = []
  try {
    const token = await coordinator.createToken('Sparse Broadcast Lab', { uses: 2 })
    for (let i = 0; i < 2; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `broadcast-${i}` }))
    const spec = tinyRunSpec({
      codec: 'topk', broadcast: 'sparse', minNodes: 2, maxNodes: 2, rounds: 6,
      recipe: { innerSteps: 10, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2, outerLr: 2, outerMomentum: 0 }
    })
    const runId = await createRunViaCli(dataDir, spec)
    const killedAt = (await waitForRun(coordinator.url, runId, (r) => r.round >= 2, 120_000)).round
    assert.match(coordinator.process.output(), /"msg":"sparse broadcast".*"residualCarried":true/, 'round 2 carried round 1\'s residual')
    const base = coordinator.url
    coordinator.process.child.kill('SIGKILL')
    await coordinator.process.exited
    coordinator = await startCoordinator({ dataDir, env: { BARNRAISE_LOG: 'info' }, args: ['--http-port', new URL(base).port, '--p2p-port', coordinator.multiaddr.split('/')[4]!] })
    await waitForRun(base, runId, (r) => r.status === 'completed', 240_000, { coordinator: coordinator.process.output, 'agent 0': agents[0]!.output, 'agent 1': agents[1]!.output })

    // The restarted coordinator read the residual it had stored, rather than starting from zero.
    const after = [...coordinator.process.output().matchAll(/^.*"msg":"sparse broadcast".*$/gm)].map((m) => JSON.parse(m[0]) as { round: number, residualCarried: boolean, bytes: number })
    assert.ok(after.length > 0 && after.every((b) => b.round > killedAt), `broadcasts after the restart: ${JSON.stringify(after)}`)
    assert.equal(after[0]!.residualCarried, true, 'the first broadcast after the restart carried the stored residual')

    const checkpoints = await getJson<ApiCheckpoint[]>(base, `api/runs/${runId}/checkpoints`)
    assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss! - 0.1, `validation loss fell: ${checkpoints[0]!.valLoss} → ${checkpoints.at(-1)!.valLoss}`)
    const sha = checkpoints.at(-1)!.sha256
    const config = parseLlamaConfig(await getJson(base, `api/checkpoints/${sha}/config.json`))
    const params = paramSetFromSafetensors(config, new Uint8Array(await (await fetch(new URL(`api/checkpoints/${sha}/model.safetensors`, base))).arrayBuffer())).flat.length
    const payload = encodedByteLength('topk', params)
    for (const b of after) assert.equal(b.bytes, payload, 'one topk payload a round, whatever the number of nodes')

    // Every base an agent did not make from the seed it rebuilt from the round's topk mean, and
    // the rebuild hashed to the coordinator's checkpoint (else the agent would have downloaded it),
    // on both sides of the restart.
    for (const agent of agents) {
      const rebuilt = [...agent.output().matchAll(/round (\d+): .*base rebuilt from the round's topk mean \((\d+) KiB instead of a (\d+) KiB model\)/g)]
      const rounds = rebuilt.map((m) => Number(m[1]))
      assert.ok(rounds.includes(2) && rounds.some((r) => r > killedAt + 1), `rebuilt rounds ${JSON.stringify(rounds)} (killed after round ${killedAt}):\n${agent.output()}`)
      for (const m of rebuilt) assert.equal(Number(m[2]), Math.round(payload / 1024))
      // The one failure allowed: a rebuild cut off while the coordinator was down.
      assert.doesNotMatch(agent.output(), /could not rebuild the base from the round's reports \((?!connection error)/)
    }
  } finally {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    await coordinator.stop()
  }
})

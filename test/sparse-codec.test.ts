import { test } from 'vitest'
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { encodedByteLength, parseLlamaConfig, parseReportMetadata } from '@barnraise/protocol'
import { paramSetFromSafetensors } from '@barnraise/trainer'
import type { LedgerEntry } from '@barnraise/protocol'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

// The topk codec between real processes: each agent sends 1 in 64 of its pseudo-gradient's
// values and keeps the rest as error feedback for its next report.
test('a topk run trains across real agents that keep error feedback between rounds', async () => {
  const coordinator = await startCoordinator()
  const agents: RunningAgent[] = []
  try {
    const token = await coordinator.createToken('Sparse Lab', { uses: 2 })
    for (let i = 0; i < 2; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `sparse-${i}` }))
    const spec = tinyRunSpec({ codec: 'topk', minNodes: 2, rounds: 6, recipe: { innerSteps: 10, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2, outerLr: 1, outerMomentum: 0.5 } })
    const runId = await createRunViaCli(coordinator.dataDir, spec)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', undefined, { coordinator: coordinator.process.output, 'agent 0': agents[0]!.output, 'agent 1': agents[1]!.output })

    const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
    const first = checkpoints[0]!.valLoss!
    const last = checkpoints.at(-1)!.valLoss!
    assert.ok(last < first - 0.1, `validation loss fell with sparse reports: ${first} → ${last}`)

    const sha = checkpoints.at(-1)!.sha256
    const config = parseLlamaConfig(await getJson(coordinator.url, `api/checkpoints/${sha}/config.json`))
    const weights = new Uint8Array(await (await fetch(new URL(`api/checkpoints/${sha}/model.safetensors`, coordinator.url))).arrayBuffer())
    const params = paramSetFromSafetensors(config, weights).flat.length
    const ledger = await getJson<LedgerEntry[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
    const accepted = ledger.filter((e) => e.outcome === 'accepted').map((e) => parseReportMetadata(e.metadata!)!)
    assert.equal(accepted.length, 12)
    for (const m of accepted) {
      assert.equal(m.codec, 'topk')
      assert.equal(m.payloadBytes, encodedByteLength('topk', params), 'every report is a topk payload')
    }
    assert.ok(encodedByteLength('topk', params) * 100 < 4 * params, 'more than 100× smaller than fp32')

    // From round 2 on, every agent rebuilt its base from the previous round's two reports
    // instead of downloading the model, and its rebuild hashed to the coordinator's checkpoint.
    for (const agent of agents) {
      for (let round = 2; round <= 6; round++) {
        assert.match(agent.output(), new RegExp(`round ${round}: .*base rebuilt from 2 reports \\(\\d+ KiB instead of a \\d+ KiB model\\)`), `round ${round}:\n${agent.output()}`)
        // The run's default error-feedback decay reached the agent in its units.
        assert.match(agent.output(), new RegExp(`round ${round}: .*report accepted \\(\\d+ KiB topk, 0\\.7 of the last residual carried\\)`))
      }
    }

    // An agent's cache holds its newest base only, not every checkpoint of the run.
    for (const agent of agents) {
      const cached = new Set(await readdir(join(agent.dataDir, 'blobs')))
      assert.ok(cached.has(checkpoints[5]!.sha256), 'the last unit\'s base')
      for (const c of checkpoints.slice(0, 5)) assert.ok(!cached.has(c.sha256), `round ${c.round}'s checkpoint was dropped`)
    }

    // Each agent kept what its codec dropped: a residual of the model's size, not all zeros.
    for (const agent of agents) {
      const bytes = await readFile(join(agent.dataDir, 'runs', runId, 'error-feedback.bin'))
      assert.equal(bytes.byteLength, 16 + 4 * params)
      const residual = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 16, bytes.byteOffset + bytes.byteLength))
      assert.ok(residual.some((x) => x !== 0) && residual.every(Number.isFinite))
    }
  } finally {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    await coordinator.stop()
  }
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { createRunViaCli, tinyRunSpec, waitForRun } from './support/runs.ts'

/** The value of the sample `series` in a Prometheus text exposition, or 0. */
function sample (text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

// Three real agent processes, one real coordinator process: a model whose checkpoint (13 MB)
// is worth exchanging, all three handed their first unit at once.
test('three agents take the base checkpoint mostly from each other; the coordinator sends about one copy', async () => {
  const coordinator = await startCoordinator({ args: ['--metrics'] })
  const agents: RunningAgent[] = []
  try {
    const token = await coordinator.createToken('Spread Lab', { uses: 3 })
    for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `spread-${i}`, args: ['--metrics-port', '0'] }))
    const model = { vocab_size: 256, hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4, num_attention_heads: 4, max_position_embeddings: 64, tie_word_embeddings: false }
    const params = 4 * (4 * 256 * 256 + 3 * 256 * 688 + 2 * 256) + 256 + 2 * 256 * 256
    const checkpointBytes = params * 4
    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({
      model: { config: model }, rounds: 1, minNodes: 3, maxNodes: 3, evalBatches: 1,
      recipe: { innerSteps: 2, batchSize: 1, seqLen: 16, innerLr: 0.001, warmupSteps: 1 }
    }))
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 180_000, Object.fromEntries(agents.map((a, i) => [`agent ${i}`, a.output])))

    let fromPeers = 0
    let fromCoordinator = 0
    for (const agent of agents) {
      const url = /^agent: metrics at (\S+)/m.exec(agent.output())?.[1]
      assert.ok(url !== undefined, 'the agent serves metrics')
      const text = await (await fetch(url)).text()
      fromPeers += sample(text, 'barnraise_agent_blob_bytes_received_total{source="peers"}')
      fromCoordinator += sample(text, 'barnraise_agent_blob_bytes_received_total{source="coordinator"}')
    }
    const served = sample(await (await fetch(new URL('metrics', coordinator.url))).text(), 'barnraise_blob_bytes_served_total')
    // Each agent holds the checkpoint once: a third from the coordinator, the rest from the others
    // (the shards are small, so they come from the coordinator whole).
    assert.ok(fromPeers >= checkpointBytes, `the agents gave each other ${(fromPeers / checkpointBytes).toFixed(2)}× the checkpoint`)
    assert.ok(served < 1.5 * checkpointBytes, `the coordinator sent ${(served / checkpointBytes).toFixed(2)}× the checkpoint in all (${fromCoordinator} bytes by the agents' count)`)
  } finally {
    for (const a of agents) await a.stop()
    await coordinator.stop()
  }
})

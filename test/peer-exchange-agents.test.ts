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

// A model whose checkpoint (13 MB) is worth exchanging.
const MODEL = { vocab_size: 256, hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4, num_attention_heads: 4, max_position_embeddings: 64, tie_word_embeddings: false }
const CHECKPOINT_BYTES = 4 * (4 * (4 * 256 * 256 + 3 * 256 * 688 + 2 * 256) + 256 + 2 * 256 * 256)

/** An agent's own count of blob bytes it received from `source`, from its /metrics. */
async function received (agent: RunningAgent, source: 'peers' | 'coordinator'): Promise<number> {
  const url = /^agent: metrics at (\S+)/m.exec(agent.output())?.[1]
  assert.ok(url !== undefined, 'the agent serves metrics')
  return sample(await (await fetch(url)).text(), `barnraise_agent_blob_bytes_received_total{source="${source}"}`)
}

// Three real agent processes, one real coordinator process, all three handed their first unit at once.
test('three agents take the base checkpoint mostly from each other; the coordinator sends about one copy', async () => {
  const coordinator = await startCoordinator({ args: ['--metrics'] })
  const agents: RunningAgent[] = []
  try {
    const token = await coordinator.createToken('Spread Lab', { uses: 3 })
    for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `spread-${i}`, args: ['--metrics-port', '0'] }))
    const checkpointBytes = CHECKPOINT_BYTES
    // Round 1's base is the untrained model, which every agent makes from the run's seed; a run
    // that clips its reports does not broadcast updates, so round 2's base is downloaded by all three.
    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({
      model: { config: MODEL }, rounds: 2, minNodes: 3, maxNodes: 3, evalBatches: 1, defences: { clipToMedianNorm: 10 },
      recipe: { innerSteps: 2, batchSize: 1, seqLen: 16, innerLr: 0.001, warmupSteps: 1 }
    }))
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 180_000, Object.fromEntries(agents.map((a, i) => [`agent ${i}`, a.output])))

    let fromPeers = 0
    let fromCoordinator = 0
    for (const agent of agents) {
      fromPeers += await received(agent, 'peers')
      fromCoordinator += await received(agent, 'coordinator')
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

// In a run that broadcasts its updates, nodes that trained the last round rebuild the next base
// themselves and never download it. A node joining mid-run must still find them: they tell the
// tracker they hold the base they made (swarm-hold), and the newcomer takes it from them.
test('a node joining mid-run takes the current base from the nodes that rebuilt it, not from the coordinator', async () => {
  const coordinator = await startCoordinator({ args: ['--metrics'] })
  const agents: RunningAgent[] = []
  try {
    const token = await coordinator.createToken('Late Lab', { uses: 3 })
    for (let i = 0; i < 2; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `early-${i}`, args: ['--metrics-port', '0'] }))
    const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({
      model: { config: MODEL }, rounds: 5, minNodes: 2, maxNodes: 3, evalBatches: 1,
      recipe: { innerSteps: 2, batchSize: 1, seqLen: 16, innerLr: 0.001, warmupSteps: 1 }
    }))
    const logs = (): Record<string, () => string> => Object.fromEntries(agents.map((a, i) => [`agent ${i}`, a.output]))
    await waitForRun(coordinator.url, runId, (r) => r.round >= 1, 180_000, logs())
    const late = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'late', args: ['--metrics-port', '0'] })
    agents.push(late)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000, logs())

    const rebuilt = agents.slice(0, 2).map((a) => (a.output().match(/base rebuilt from/g) ?? []).length)
    assert.ok(rebuilt.every((n) => n >= 2), `the early nodes rebuilt their bases (${rebuilt.join(', ')} times)`)
    assert.match(late.output(), /report accepted/, 'the late node trained and reported')
    // Its first base came mostly from the two that rebuilt it. (It asks the tracker as they
    // rebuild: a share it was given before they announced comes from the coordinator.)
    const fromPeers = await received(late, 'peers')
    assert.ok(fromPeers >= 0.5 * CHECKPOINT_BYTES, `the late node took ${(fromPeers / CHECKPOINT_BYTES).toFixed(2)}× the checkpoint from its peers`)
  } finally {
    for (const a of agents) await a.stop()
    await coordinator.stop()
  }
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { tempDir } from './support/cluster.ts'
import { createNatLab } from './support/nat-lab.ts'
import { runCli, spawnCli } from './support/processes.ts'
import type { Spawned } from './support/processes.ts'
import { createRunViaCli, tinyRunSpec } from './support/runs.ts'

const run = promisify(execFile)

/** The value of the sample `series` in a Prometheus text exposition, or 0. */
function sample (text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

// Real processes in network namespaces (test/support/nat-lab.ts): the coordinator on the
// "internet", each agent behind its own masquerading router, so neither agent can be dialled
// except through the coordinator's relay.
test('two agents behind separate NATs take the base checkpoint from each other through the coordinator\'s relay', async () => {
  const lab = await createNatLab()
  const processes: Spawned[] = []
  try {
    const dataDir = await tempDir('nat-coord')
    // Embedded PGlite: the test's Postgres on 127.0.0.1 is outside the namespace.
    const coordinator = spawnCli('coordinator/src/cli.ts', ['serve', '--data-dir', dataDir, '--host', lab.publicIp, '--http-port', '0', '--p2p-port', '0'], { DATABASE_URL: '' }, lab.inside(lab.pub))
    processes.push(coordinator)
    const [, multiaddr] = await coordinator.waitForLine(/^coordinator multiaddr: (\S+)/, 60_000)
    // The admin socket is a file in the data directory: the CLI reaches it from outside the namespace.
    const made = await runCli('coordinator/src/cli.ts', ['token', 'create', '--org', 'NAT Lab', '--uses', '2', '--data-dir', dataDir, '--json'], { DATABASE_URL: '' })
    assert.equal(made.code, 0, made.output)
    const token = (JSON.parse(made.stdout) as { token: string }).token
    const agents = lab.agents.map((ns, i) => spawnCli('node-agent/src/cli.ts', [
      'join', '--coordinator', multiaddr!, '--token', token, '--name', `behind-nat-${i}`, '--data-dir', `${dataDir}-agent-${i}`,
      '--executor', 'typescript', '--threads', '1', '--heartbeat-interval', '1', '--metrics-port', '0', '--verbose'
    ], {}, lab.inside(ns)))
    processes.push(...agents)
    for (const a of agents) await a.waitForLine(/^agent: (?:enrolled|re-joined) as node/, 60_000)

    // A 13 MB checkpoint: more than peer exchange fetches from the coordinator whole.
    const model = { vocab_size: 256, hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4, num_attention_heads: 4, max_position_embeddings: 64, tie_word_embeddings: false }
    // Round 1's base is made from the run's seed; clipped reports mean no broadcast updates, so
    // round 2's base is downloaded.
    await createRunViaCli(dataDir, tinyRunSpec({ model: { config: model }, rounds: 2, minNodes: 2, maxNodes: 2, evalBatches: 1, defences: { clipToMedianNorm: 10 }, recipe: { innerSteps: 2, batchSize: 1, seqLen: 16, innerLr: 0.001, warmupSteps: 1 } }), { DATABASE_URL: '' })
    for (const a of agents) await a.waitForLine(/round 2: .*report accepted/, 180_000)

    let fromPeers = 0
    for (const [i, a] of agents.entries()) {
      const url = /^agent: metrics at (\S+)/m.exec(a.output())?.[1]
      assert.ok(url !== undefined, 'the agent serves metrics')
      const { stdout } = await run('ip', ['netns', 'exec', lab.agents[i]!, process.execPath, '-e', `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t))`])
      fromPeers += sample(stdout, 'barnraise_agent_blob_bytes_received_total{source="peers"}')
    }
    const checkpointBytes = 4 * (4 * (4 * 256 * 256 + 3 * 256 * 688 + 2 * 256) + 256 + 2 * 256 * 256)
    // The second agent to ask took the first one's share from it, which only the relay (or a
    // hole punched through both NATs) could carry.
    assert.ok(fromPeers >= checkpointBytes / 4, `the agents gave each other ${(fromPeers / checkpointBytes).toFixed(2)}× the checkpoint:\n${agents.map((a) => a.output()).join('\n----\n')}`)
  } finally {
    for (const p of processes.reverse()) await p.stop()
    await lab.close()
  }
})

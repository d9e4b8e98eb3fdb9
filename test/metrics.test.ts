import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { startHostile } from './support/hostile.ts'
import type { Spawned } from './support/processes.ts'
import { createRunViaCli, tinyRunSpec, waitForRun } from './support/runs.ts'

/** The value of the sample `name{labels}` in a Prometheus text exposition, or undefined. */
function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('/metrics', () => {
  test('with --metrics a coordinator serves Prometheus text: rounds, verdicts by refusal code, latency and bytes per protocol, online nodes; no peer ids; without it /metrics is only the dashboard', async () => {
    const coordinator: RunningCoordinator = await startCoordinator({ args: ['--metrics'] })
    const plain = await startCoordinator()
    let agent: RunningAgent | undefined
    let rider: Spawned | undefined
    try {
      // Without the flag the path is the dashboard's like any other (its own not-found page).
      const off = await fetch(new URL('metrics', plain.url))
      assert.match(off.headers.get('content-type') ?? '', /^text\/html/)
      assert.doesNotMatch(await off.text(), /barnraise_rounds_total/)
      const token = await coordinator.createToken('Metrics Lab', { uses: 2 })
      agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'honest', args: ['--metrics-port', '0'] })
      const agentMetrics = /^agent: metrics at (\S+)/m.exec(agent.output())?.[1]
      assert.match(agentMetrics ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
      const started = await startHostile('zero', coordinator.multiaddr, token, 'rider')
      rider = started.proc
      const riderId = started.peerId
      const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ minNodes: 2, maxNodes: 2, rounds: 2, recipe: { innerSteps: 4, batchSize: 2, seqLen: 16, innerLr: 0.003, warmupSteps: 1 } }))
      await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 120_000)

      // The run reads as completed once the last round's transaction commits; the counter follows a moment later.
      const scrape = async (): Promise<{ res: Response, text: string }> => {
        const res = await fetch(new URL('metrics', coordinator.url))
        return { res, text: await res.text() }
      }
      let { res, text } = await scrape()
      for (let i = 0; i < 50 && sample(text, 'barnraise_rounds_total{outcome="closed"}') !== 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        ({ res, text } = await scrape())
      }
      assert.equal(res.status, 200)
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
      assert.equal(sample(text, 'barnraise_rounds_total{outcome="closed"}'), 2)
      assert.equal(sample(text, 'barnraise_reports_total{outcome="accepted",code=""}'), 2)
      assert.equal(sample(text, 'barnraise_reports_total{outcome="refused",code="ERR_EMPTY_DELTA"}'), 2)
      assert.equal(sample(text, 'barnraise_nodes_online'), 2)
      for (const protocol of ['enroll', 'heartbeat', 'work', 'blob', 'report']) {
        const count = sample(text, `barnraise_protocol_request_seconds_count{protocol="/barnraise/${protocol}/1.0.0"}`)
        assert.ok(count !== undefined && count >= 1, `${protocol} requests timed: ${count}`)
      }
      // Checkpoints and shards went out on the blob protocol; two reports' payloads came in.
      assert.ok((sample(text, 'libp2p_data_transfer_bytes_total{protocol="/barnraise/blob/1.0.0 sent"}') ?? 0) > 10_000)
      assert.ok((sample(text, 'libp2p_data_transfer_bytes_total{protocol="/barnraise/report/1.0.0 received"}') ?? 0) > 1_000)
      // The honest agent fetched through peer exchange: the tracker answered it, and the blob bytes it
      // took from the coordinator are counted as egress (the rider downloads the plain way).
      assert.ok((sample(text, 'barnraise_blob_bytes_served_total') ?? 0) > 10_000, 'coordinator blob egress is counted')
      assert.ok((sample(text, 'barnraise_swarm_requests_total{answer="alone"}') ?? 0) + (sample(text, 'barnraise_swarm_requests_total{answer="peers"}') ?? 0) >= 1, 'the tracker answered')
      assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0 || (sample(text, 'nodejs_memory_usage_bytes{memory="rss"}') ?? 0) > 0, 'process memory is exported')
      assert.ok(!text.includes(agent.peerId) && !text.includes(riderId), 'no series names a peer')

      // The agent's own /metrics: the work it did and what became of its reports.
      const mine = await (await fetch(agentMetrics!)).text()
      assert.equal(sample(mine, 'barnraise_agent_units_trained_total{executor="typescript"}'), 2)
      assert.equal(sample(mine, 'barnraise_agent_reports_total{outcome="accepted",code=""}'), 2)
      assert.equal(sample(mine, 'barnraise_agent_tokens_trained_total{executor="typescript"}'), 2 * 4 * 2 * 16)
      assert.ok((sample(mine, 'barnraise_agent_compute_seconds_total{executor="typescript"}') ?? 0) > 0)
      assert.ok((sample(mine, 'barnraise_agent_tokens_per_second{executor="typescript"}') ?? 0) > 0)
      assert.ok((sample(mine, 'barnraise_agent_memory_bytes') ?? 0) > 0)
      assert.ok((sample(mine, 'libp2p_data_transfer_bytes_total{protocol="/barnraise/blob/1.0.0 received"}') ?? 0) > 10_000, 'checkpoint and shard bytes in')
      assert.ok((sample(mine, 'barnraise_agent_blob_bytes_received_total{source="coordinator"}') ?? 0) > 10_000, 'peer exchange counted what came from the coordinator')
      assert.ok((sample(mine, 'libp2p_data_transfer_bytes_total{protocol="/barnraise/report/1.0.0 sent"}') ?? 0) > 1_000, 'report bytes out')
      assert.equal((await fetch(agentMetrics!.replace('/metrics', '/other'))).status, 404)
    } finally {
      await agent?.stop()
      await rider?.stop()
      await coordinator.stop()
      await plain.stop()
    }
  })
})

// One run, two kinds of node: a TypeScript agent and a PyTorch agent (torch on the CPU) train
// the same rounds. Their deltas fold together, the model improves, and the ledger says which
// executor trained each report, signed by the node. The torch agent trains on two ranks
// (`--device cpu,cpu`, data parallel inside its child, as `cuda:all` on a GPU machine), and
// its signed reports and ledger rows say two devices trained them (the coordinator credits one:
// their throughput does not show two GPUs' worth). A third node, capped to less memory than
// any unit needs, declines its units: the reason lands in the ledger and the rounds go on.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'
import { runCli } from './support/processes.ts'

test('a TypeScript agent and a torch agent train one run: both accepted, validation loss falls, the ledger names both executors; a node that cannot fit a unit declines it with the reason', async () => {
  const coordinator = await startCoordinator()
  const agents: RunningAgent[] = []
  try {
    const token = await coordinator.createToken('Mixed Lab', { uses: 3 })
    agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: 'cpu-ts', args: ['--executor', 'typescript'] }))
    agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: 'cpu-torch', args: ['--executor', 'torch', '--device', 'cpu,cpu'] }))
    assert.match(agents[1]!.output(), /agent: executor torch-cpu: PyTorch \S+ on CPU \(1 thread × 2 ranks\)/)
    agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: 'cramped', args: ['--executor', 'torch', '--device', 'cpu', '--max-memory', '0.01'] }))
    const spec = tinyRunSpec({ minNodes: 2, maxNodes: 3, rounds: 5, recipe: { innerSteps: 10, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2 } })
    const runId = await createRunViaCli(coordinator.dataDir, spec)
    const run = await waitForRun(coordinator.url, runId, (r) => r.status === 'completed')
    assert.equal(run.round, 5)

    const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
    const first = checkpoints[0]!
    const last = checkpoints.at(-1)!
    assert.ok(first.valLoss !== null && last.valLoss !== null)
    assert.ok(last.valLoss < first.valLoss - 0.2, `validation loss fell clearly: ${first.valLoss} → ${last.valLoss}`)

    const ledger = await getJson<Array<{ outcome: string, peerId: string, executor: string | null, devices: number | null, creditedDevices: number | null, metadata: string | null, reason: string | null }>>(coordinator.url, `api/runs/${runId}/ledger.json`)
    const accepted = ledger.filter((e) => e.outcome === 'accepted')
    assert.equal(accepted.length, 10, 'both training nodes\' reports accepted in all five rounds')
    const [ts, torch] = agents
    assert.deepEqual(new Set(accepted.filter((e) => e.peerId === ts!.peerId).map((e) => e.executor)), new Set(['typescript']))
    assert.deepEqual(new Set(accepted.filter((e) => e.peerId === torch!.peerId).map((e) => e.executor)), new Set(['torch-cpu']))
    assert.equal(accepted.filter((e) => e.peerId === torch!.peerId).length, 5)
    for (const e of accepted) {
      const mine = e.peerId === torch!.peerId
      assert.equal(e.devices, mine ? 2 : null)
      // Two CPU ranks on the tiny model are far from 10 TFLOP/s a device: the coordinator credits one.
      assert.equal(e.creditedDevices, mine ? 1 : null)
      assert.ok(e.metadata?.endsWith(mine ? `,"${e.executor}",2]` : `,"${e.executor}"]`), 'the executor and the device count are in the signed metadata')
    }
    const cramped = agents[2]!
    const declined = ledger.filter((e) => e.peerId === cramped.peerId)
    assert.ok(declined.length >= 1)
    for (const e of declined) {
      assert.equal(e.outcome, 'refused')
      assert.match(e.reason ?? '', /^ERR_DECLINED: the node declined the unit \(ERR_UNIT_TOO_LARGE\): the unit needs about \d+\.\d GiB .* but cpu has 0\.0 GiB of free host memory/)
    }
    assert.match(cramped.output(), /declined the work unit \(ERR_UNIT_TOO_LARGE\)/)

    const verify = await runCli('coordinator/src/cli.ts', ['ledger', 'verify', '--run', runId, '--from', coordinator.url])
    assert.equal(verify.code, 0, verify.output)
    const csv = (await (await fetch(new URL(`api/runs/${runId}/ledger.csv`, coordinator.url))).text()).trim().split('\r\n')
    assert.ok(csv[0]!.split(',').includes('executor'))
    // The executor, the score (empty: this run does not screen), the device count and the credited
    // count (empty: one), then the credited CPU cores (both rows are CPU time: 1 or 2 of the machine's) end each row.
    assert.ok(csv.some((line) => /,torch-cpu,,2,1,[12]$/.test(line)) && csv.some((line) => /,typescript,,,,[12]$/.test(line)), csv.filter((line) => /,(torch-cpu|typescript),/.test(line)).slice(0, 4).map((line) => line.slice(-40)).join('\n'))
  } finally {
    await Promise.all(agents.map(async (a) => { await a.stop() }))
    await coordinator.stop()
  }
})

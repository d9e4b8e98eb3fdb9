import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import pg from 'pg'
import { parseLlamaConfig } from '@barnraise/protocol'
import { paramSetFromSafetensors, validationLoss, demoCorpusShards } from '@barnraise/trainer'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint, ProcessLogs } from './support/runs.ts'
import { runCli } from './support/processes.ts'
import { createTestDatabase } from './support/postgres.ts'

/** The processes' output, for a timed-out wait to show. */
function logsOf (coordinator: () => RunningCoordinator | undefined, agents: RunningAgent[]): ProcessLogs {
  const logs: ProcessLogs = { coordinator: () => coordinator()?.process.output() ?? '' }
  for (const [i, a] of agents.entries()) logs[`agent ${i}`] = a.output
  return logs
}

async function stopAll (agents: RunningAgent[], coordinator: RunningCoordinator | undefined): Promise<void> {
  await Promise.all(agents.map(async (a) => { await a.stop() }))
  await coordinator?.stop()
}

describe('federated training between real processes', () => {
  test('three agents train five rounds; validation loss falls; the downloaded checkpoint gives the reported loss', async () => {
    const coordinator = await startCoordinator()
    const agents: RunningAgent[] = []
    try {
      const token = await coordinator.createToken('Train Lab', { uses: 3 })
      for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `trainer-${i}` }))
      const spec = tinyRunSpec({ minNodes: 3, rounds: 5, recipe: { innerSteps: 10, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2 } })
      const runId = await createRunViaCli(coordinator.dataDir, spec)
      const run = await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', undefined, logsOf(() => coordinator, agents))
      assert.equal(run.round, 5)

      const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
      assert.equal(checkpoints.length, 6, 'the initial checkpoint and one per round')
      const first = checkpoints[0]!
      const last = checkpoints.at(-1)!
      assert.ok(first.valLoss !== null && last.valLoss !== null)
      assert.ok(last.valLoss < first.valLoss - 0.2, `validation loss fell clearly: ${first.valLoss} → ${last.valLoss}`)
      assert.ok(last.tokensSeen > 0)

      // Each round had three accepted reports in the ledger.
      const ledger = await getJson<Array<{ outcome: string, round: number }>>(coordinator.url, `api/runs/${runId}/ledger.json`)
      assert.equal(ledger.filter((e) => e.outcome === 'accepted').length, 15)

      // The downloaded checkpoint, loaded by our own importer, gives the reported loss.
      const config = parseLlamaConfig(await getJson(coordinator.url, `api/checkpoints/${last.sha256}/config.json`))
      const res = await fetch(new URL(`api/checkpoints/${last.sha256}/model.safetensors`, coordinator.url))
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('etag'), `"${last.sha256}-model.safetensors"`)
      const bytes = new Uint8Array(await res.arrayBuffer())
      const params = paramSetFromSafetensors(config, bytes)
      const { validation } = await demoCorpusShards()
      const loss = validationLoss(params, validation.tokens, { batches: 2, batchSize: 4, seqLen: 32 })
      assert.ok(Math.abs(loss - last.valLoss) < 1e-4, `recomputed ${loss} vs reported ${last.valLoss}`)

      // Immutable downloads honour ETags and ranges.
      const cached = await fetch(new URL(`api/checkpoints/${last.sha256}/model.safetensors`, coordinator.url), { headers: { 'if-none-match': `"${last.sha256}-model.safetensors"` } })
      assert.equal(cached.status, 304)
      const ranged = await fetch(new URL(`api/checkpoints/${last.sha256}/model.safetensors`, coordinator.url), { headers: { range: 'bytes=0-7' } })
      assert.equal(ranged.status, 206)
      assert.deepEqual(new Uint8Array(await ranged.arrayBuffer()), bytes.subarray(0, 8))
      for (const file of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
        assert.equal((await fetch(new URL(`api/checkpoints/${last.sha256}/${file}`, coordinator.url))).status, 200, file)
      }
      const verify = await runCli('coordinator/src/cli.ts', ['ledger', 'verify', '--run', runId, '--from', coordinator.url])
      assert.equal(verify.code, 0, verify.output)
      assert.match(verify.stdout, /ledger OK: 15 rows/)
      const csv = await (await fetch(new URL(`api/runs/${runId}/ledger.csv`, coordinator.url))).text()
      assert.equal(csv.trim().split('\r\n').length, 16, 'header plus 15 rows')

      // An agent's log says one line per round (no per-step progress in a log, no repeated waiting).
      for (const agent of agents) {
        const lines = agent.output().split('\n')
        for (let round = 1; round <= 5; round++) {
          const about = lines.filter((l) => new RegExp(`\\bround ${round}\\b`).test(l))
          assert.equal(about.length, 1, `one line for round ${round}:\n${about.join('\n')}`)
          // Round 1's base is the untrained model, made from the run's seed; from round 2 the base
          // is rebuilt from round − 1's int8 mean (one report's size, where the three reports would
          // be three times that): the fp32 model is never downloaded.
          const rebuilt = round === 1 ? `; base made from the run's seed \\(\\d+\\) instead of downloading a \\d+ KiB model` : '; base rebuilt from the round\'s int8 mean \\((\\d+) KiB instead of a (\\d+) KiB model\\)'
          const line = new RegExp(`^agent: \\S.* round \\d+: 10 steps, loss [\\d.]+ → [\\d.]+, 1,280 tokens at [\\d,]+ tok/s; report accepted \\((\\d+) KiB int8\\)${rebuilt}$`).exec(about[0]!)
          assert.ok(line !== null, about[0])
          if (round > 1) assert.ok(Number(line[2]) === Number(line[1]) && Number(line[2]) * 3 < Number(line[3]), `the mean is a report's size, under a third of the model: ${about[0]}`)
        }
        assert.ok(lines.filter((l) => l.startsWith('agent: waiting for work')).length <= 2, `waiting is said once per reason:\n${agent.output()}`)
      }
    } finally {
      await stopAll(agents, coordinator)
    }
  })

  test('an agent killed mid-round: the round closes at its deadline, its tokens are reassigned, the run finishes', async () => {
    const database = await createTestDatabase()
    const env = { DATABASE_URL: database.url }
    const coordinator = await startCoordinator({ env })
    const agents: RunningAgent[] = []
    const client = new pg.Client({ connectionString: database.url })
    await client.connect()
    try {
      const token = await coordinator.createToken('Flaky Lab', { uses: 3 })
      for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `flaky-${i}` }))
      const spec = tinyRunSpec({ minNodes: 2, rounds: 3, roundDeadlineSeconds: 20, recipe: { innerSteps: 40, batchSize: 4, seqLen: 32, innerLr: 0.003, warmupSteps: 2 } })
      const runId = await createRunViaCli(coordinator.dataDir, spec, env)
      const victim = agents[2]!
      // Its first unit has arrived (it names its executor once, as it starts training round 1).
      await victim.process.waitForLine(/^agent: training with /, 60_000)
      victim.process.child.kill('SIGKILL')
      await victim.process.exited
      const run = await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000, logsOf(() => coordinator, agents))
      assert.equal(run.round, 3)
      const round1 = await client.query<{ close_reason: string }>(`select close_reason from rounds where run_id = $1 and number = 1 and status = 'closed'`, [runId])
      assert.match(round1.rows[0]!.close_reason, /^deadline: 2 of 3/)
      const victimUnits = await client.query<{ status: string, ranges: unknown, requeued: boolean }>(
        `select a.status, a.ranges, a.requeued from assignments a join nodes n on n.id = a.node_id join rounds r on r.id = a.round_id
         where a.run_id = $1 and n.peer_id = $2 and r.number = 1`, [runId, victim.peerId])
      assert.equal(victimUnits.rows[0]!.status, 'expired')
      assert.equal(victimUnits.rows[0]!.requeued, true)
      const reassigned = await client.query<{ n: string }>(
        `select count(*) as n from assignments a join rounds r on r.id = a.round_id where a.run_id = $1 and r.number = 2 and a.status = 'accepted' and a.ranges = $2::jsonb`,
        [runId, JSON.stringify(victimUnits.rows[0]!.ranges)])
      assert.equal(Number(reassigned.rows[0]!.n), 1, 'the dead node\'s token ranges were trained by another node in the next round')
    } finally {
      await client.end()
      // All of them: if the test failed before the kill, the victim still runs and would hold the file open.
      await stopAll(agents, coordinator)
      await database.drop()
    }
  })

  test('a coordinator killed mid-run resumes; the ledger verifies, then tampering with a row is caught and named', async () => {
    const database = await createTestDatabase()
    const env = { DATABASE_URL: database.url }
    let coordinator: RunningCoordinator | undefined = await startCoordinator({ env })
    const dataDir = coordinator.dataDir
    const agents: RunningAgent[] = []
    const client = new pg.Client({ connectionString: database.url })
    await client.connect()
    try {
      const token = await coordinator.createToken('Sturdy Lab', { uses: 2 })
      for (let i = 0; i < 2; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `sturdy-${i}` }))
      const runId = await createRunViaCli(dataDir, tinyRunSpec({ minNodes: 2, rounds: 6, roundDeadlineSeconds: 20 }), env)
      await waitForRun(coordinator.url, runId, (r) => r.round >= 2, undefined, logsOf(() => coordinator, agents))
      coordinator.process.child.kill('SIGKILL')
      await coordinator.process.exited
      // Same data dir, same key, same port: the agents reconnect on their own.
      const port = new URL(coordinator.url).port
      const p2pPort = coordinator.multiaddr.split('/')[4]!
      coordinator = await startCoordinator({ env, dataDir, args: ['--http-port', port, '--p2p-port', p2pPort] })
      const run = await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000, logsOf(() => coordinator, agents))
      assert.equal(run.round, 6)
      const dupes = await client.query(`select assignment_id from ledger where run_id = $1 and outcome = 'accepted' group by assignment_id having count(*) > 1`, [runId])
      assert.equal(dupes.rowCount, 0, 'no contribution counted twice')
      const perRound = await client.query<{ number: number, tokens: string, sum: string }>(
        `select r.number, r.tokens, coalesce(sum(l.tokens), 0) as sum from rounds r left join ledger l on l.run_id = r.run_id and l.round = r.number and l.outcome = 'accepted'
         where r.run_id = $1 and r.status = 'closed' group by r.number, r.tokens order by r.number`, [runId])
      assert.equal(perRound.rows.length, 6)
      for (const r of perRound.rows) assert.equal(Number(r.tokens), Number(r.sum), `round ${r.number}: tokens folded = tokens in the ledger`)

      const ok = await runCli('coordinator/src/cli.ts', ['ledger', 'verify', '--run', runId, '--from', coordinator.url])
      assert.equal(ok.code, 0, ok.output)
      const victim = await client.query<{ seq: string }>(`select seq from ledger where run_id = $1 and outcome = 'accepted' order by seq offset 3 limit 1`, [runId])
      const seq = victim.rows[0]!.seq
      await client.query('update ledger set tokens = tokens * 10 where seq = $1', [seq])
      const bad = await runCli('coordinator/src/cli.ts', ['ledger', 'verify', '--run', runId, '--from', coordinator.url])
      assert.equal(bad.code, 1)
      assert.match(bad.stdout, new RegExp(`ledger FAILED at row seq=${seq} \\(position \\d+ of \\d+\\): hash does not match`))
    } finally {
      await client.end()
      await stopAll(agents, coordinator)
      await database.drop()
    }
  })
})


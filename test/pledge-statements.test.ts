/*
 * What a pledge bought, through the API a dashboard and a spreadsheet use: fulfilment counts
 * only the pledging organization's accepted ledger rows written after the pledge, of the
 * pledged device kind; money pledges show the run's goals; statements list tokens, hours by
 * kind, nodes, labs and checkpoints, as JSON and as CSV; bad ids get clear errors. The run's
 * history is written straight into the database (test/support/ledger-seed.ts): no training.
 */
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { TRPCClientError } from '@trpc/client'
import { Coordinator } from '@barnraise/coordinator'
import { addTokenCounts, demoCorpusShards, unigramBaselineLoss, unigramEntropy, validationWindowStarts } from '@barnraise/trainer'
import { verifyLedger } from '@barnraise/protocol'
import { tempDir } from './support/cluster.ts'
import { createTestDatabase } from './support/postgres.ts'
import { sessionClient } from './support/session-client.ts'
import { LedgerSeeder } from './support/ledger-seed.ts'
import type { SeededNode } from './support/ledger-seed.ts'
import { allLedgerEntries } from './support/ledger-pages.ts'

type Client = ReturnType<typeof sessionClient>

async function refusal (call: Promise<unknown>): Promise<{ code: string, message: string }> {
  try {
    await call
  } catch (err) {
    assert.ok(err instanceof TRPCClientError, String(err))
    return { code: (err.data as { code: string }).code, message: err.message }
  }
  throw new Error('the call was allowed')
}

const close = (actual: number, expected: number, what: string): void => {
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual} ≠ ${expected}`)
}

describe('pledge fulfilment and statements', () => {
  let coordinator: Coordinator
  let dropDatabase: () => Promise<void>
  let anonymous: Client
  let gale: Client // funder of GPU Lab
  let cora: Client // funder of CPU Lab
  let nora: Client // funder without an organization
  let runId = ''
  let seed: LedgerSeeder
  let gpuNode: SeededNode
  let cpuNode: SeededNode
  let otherGpu: SeededNode
  const base = Date.now() - 3_600_000
  const minutes = (m: number): Date => new Date(base + m * 60_000)

  beforeAll(async () => {
    const database = await createTestDatabase()
    dropDatabase = database.drop
    coordinator = await Coordinator.start({ dataDir: await tempDir('statements'), databaseUrl: database.url, httpPort: 0, p2pPort: 0 })
    anonymous = sessionClient(coordinator.url)
    const organizer = sessionClient(coordinator.url)
    await organizer.auth.signUp.mutate({ email: 'olu@runs.test', password: 'a-long-password', displayName: 'Olu', role: 'organizer', setupCode: coordinator.setupCode! })
    const account = async (email: string, name: string, organization?: string): Promise<Client> => {
      const c = sessionClient(coordinator.url)
      await c.auth.signUp.mutate({ email, password: 'a-long-password', displayName: name, role: 'funder', ...(organization !== undefined ? { organization } : {}) })
      return c
    }
    gale = await account('gale@gpu.test', 'Gale', 'GPU Lab')
    cora = await account('cora@cpu.test', 'Cora', 'CPU Lab')
    nora = await account('nora@solo.test', 'Nora')
    runId = (await organizer.runs.create.mutate({ spec: { name: 'statement run', model: { preset: 'tiny' }, rounds: 10, recipe: { seqLen: 32, batchSize: 4 }, evalBatches: 2, fundingGoalUsd: 1000, computeGoalGpuHours: 10 } })).id
    const db = coordinator.database.db
    // Paused: the round engine leaves the seeded history alone, and pledges are still taken.
    await db.updateTable('runs').set({ status: 'paused' }).where('id', '=', runId).execute()
    seed = new LedgerSeeder(db, runId)
    gpuNode = await seed.node({ organization: 'GPU Lab', name: 'gpu-box', gpus: 2, cpuCores: 32 })
    cpuNode = await seed.node({ organization: 'CPU Lab', name: 'cpu-box', cpuCores: 8 })
    otherGpu = await seed.node({ organization: 'Other Lab', name: 'other-gpu', gpus: 1 })
    // Round 1, before any pledge: GPU Lab's box trains 0.6 GPU-hours (the "0.61").
    const r1 = await seed.round(1, { openedAt: minutes(0), closedAt: minutes(10), tokens: 3000, trainLoss: 5.1, valLoss: 5.0 })
    await seed.report(gpuNode, { id: r1.id, number: 1 }, { tokens: 1000, computeSeconds: 2160, at: minutes(5) })
    await seed.report(otherGpu, { id: r1.id, number: 1 }, { tokens: 2000, computeSeconds: 3600, at: minutes(6) })
  })
  afterAll(async () => {
    await coordinator?.stop()
    await dropDatabase?.()
  })

  let gpuPledge = ''
  let cpuPledge = ''
  let moneyPledge = ''

  test('right after a GPU-hour pledge nothing is delivered yet: earlier work is not the pledge’s', async () => {
    gpuPledge = (await gale.pledges.create.mutate({ runId, kind: 'gpu_hours', amount: 0.5 })).id
    const mine = await gale.pledges.mine.query()
    assert.equal(mine.length, 1)
    assert.deepEqual(mine[0]!.fulfilment, { unit: 'gpu_hours', pledged: 0.5, delivered: 0, fraction: 0, fulfilled: false, fulfilledAt: null })
    const statement = await anonymous.pledges.statement.query({ pledgeId: gpuPledge })
    assert.equal(statement.rows.length, 0)
    assert.deepEqual(statement.organizationSincePledge, { gpuHours: 0, cpuCoreHours: 0 })
  })

  test('compute pledges need an organization to deliver them; money does not', async () => {
    const refused = await refusal(nora.pledges.create.mutate({ runId, kind: 'gpu_hours', amount: 1 }))
    assert.equal(refused.code, 'PRECONDITION_FAILED')
    assert.match(refused.message, /GPU-hours are delivered by your organization's machines.*no organization.*pledge money instead/)
    assert.equal((await refusal(nora.pledges.create.mutate({ runId, kind: 'cpu_core_hours', amount: 1 }))).code, 'PRECONDITION_FAILED')
    await nora.pledges.create.mutate({ runId, kind: 'usd', amount: 40 })
    cpuPledge = (await cora.pledges.create.mutate({ runId, kind: 'cpu_core_hours', amount: 1 })).id
  })

  test('after contributions: only the pledger’s organization’s rows of the pledged kind, after the pledge, up to the amount', async () => {
    // Rows a few milliseconds after the last pledge: "after" is the database's clock, as for real reports.
    const pledgedAt = Math.max(...(await anonymous.pledges.forRun.query({ runId })).pledges.map((p) => Date.parse(p.createdAt)))
    const after = (ms: number): Date => new Date(pledgedAt + ms)
    const r2 = await seed.round(2, { openedAt: minutes(20), closedAt: minutes(30), tokens: 4500, trainLoss: 4.0, valLoss: 3.9 })
    await seed.report(gpuNode, { id: r2.id, number: 2 }, { tokens: 1000, computeSeconds: 1200, at: after(10) })
    await seed.report(otherGpu, { id: r2.id, number: 2 }, { tokens: 2000, computeSeconds: 3600, at: after(11) })
    await seed.report(cpuNode, { id: r2.id, number: 2 }, { tokens: 1500, computeSeconds: 900, at: after(12) })
    const r3 = await seed.round(3, { openedAt: minutes(31) })
    const last = await seed.report(gpuNode, { id: r3.id, number: 3 }, { tokens: 1500, computeSeconds: 1800, at: after(40) })

    const statement = await anonymous.pledges.statement.query({ pledgeId: gpuPledge })
    assert.equal(statement.scope, 'compute')
    const f = statement.pledge.fulfilment!
    close(f.delivered, 0.5, 'delivered')
    assert.equal(f.fulfilled, true)
    assert.equal(f.fulfilledAt, after(40).toISOString())
    // 1200 s fully, then a third of the 1800 s row: the rest is beyond the pledge.
    assert.deepEqual(statement.rows.map((r) => [r.nodeName, r.round, r.kind]), [['gpu-box', 2, 'gpu'], ['gpu-box', 3, 'gpu']])
    close(statement.rows[1]!.share, 1 / 3, 'share of the last row')
    assert.equal(statement.rows[1]!.seq, last.seq)
    close(statement.totals.tokens, 1000 + 500, 'tokens')
    close(statement.totals.gpuHours, 0.5, 'GPU-hours')
    assert.equal(statement.totals.cpuCoreHours, 0)
    assert.deepEqual(statement.labs.map((l) => [l.name, l.nodes, l.reports]), [['GPU Lab', 1, 2]])
    assert.deepEqual(statement.nodes.map((n) => [n.name, n.kind, n.device]), [['gpu-box', 'gpu', 'NVIDIA H100 80GB HBM3 × 2']])
    close(statement.organizationSincePledge!.gpuHours, (1200 + 1800) / 3600, 'GPU Lab since the pledge')
    assert.deepEqual(statement.checkpoints.map((c) => [c.round, c.state, c.sha256 === r2.checkpoint]), [[2, 'written', true], [3, 'pending', false]])
    assert.equal(statement.checkpoints[0]!.valLoss, 3.9)
    assert.match(statement.rule, /GPU machines of the pledging organization.*after the pledge/)

    const mine = await gale.pledges.mine.query()
    assert.equal(mine[0]!.fulfilment!.fulfilled, true)
  })

  test('CPU-only machines deliver CPU core-hours (seconds × claimed cores), never GPU-hours', async () => {
    const cpu = await anonymous.pledges.statement.query({ pledgeId: cpuPledge })
    assert.deepEqual(cpu.rows.map((r) => [r.nodeName, r.kind, r.device]), [['cpu-box', 'cpu', '8 CPU cores (Test CPU)']])
    close(cpu.pledge.fulfilment!.delivered, 1, 'CPU core-hours counted')
    close(cpu.rows[0]!.share, 0.5, 'half of the 2 core-hour row')
    assert.equal(cpu.totals.gpuHours, 0)

    const run = await anonymous.pledges.forRun.query({ runId })
    close(run.deliveredGpuHours, (2160 + 3600 + 1200 + 3600 + 1800) / 3600, 'GPU-hours delivered to the run')
    close(run.deliveredCpuCoreHours, 900 * 8 / 3600, 'CPU core-hours delivered to the run')
    const contributions = await anonymous.ledger.contributions.query({ runId })
    const box = contributions.nodes.find((n) => n.nodeName === 'cpu-box')!
    assert.equal(box.kind, 'cpu')
    assert.equal(box.gpuHours, 0)
    close(box.cpuCoreHours, 2, 'cpu-box core-hours')
    close(contributions.organizations.find((o) => o.organizationName === 'GPU Lab')!.gpuHours, (2160 + 1200 + 1800) / 3600, 'GPU Lab GPU-hours')
  })

  test('a money pledge shows the run’s funding and compute goals, and its statement is the run’s work since', async () => {
    await new Promise((resolve) => setTimeout(resolve, 50))
    moneyPledge = (await gale.pledges.create.mutate({ runId, kind: 'usd', amount: 250, note: 'for the =cmd() GPUs' })).id
    const entry = (await gale.pledges.mine.query()).find((p) => p.id === moneyPledge)!
    assert.equal(entry.fulfilment, null)
    assert.equal(entry.run.fundingGoalUsd, 1000)
    assert.equal(entry.run.pledgedUsd, 290)
    assert.equal(entry.run.computeGoalGpuHours, 10)
    close(entry.run.deliveredGpuHours, (2160 + 3600 + 1200 + 3600 + 1800) / 3600, 'run GPU-hours')
    const before = await anonymous.pledges.statement.query({ pledgeId: moneyPledge })
    assert.equal(before.scope, 'run')
    assert.equal(before.rows.length, 0, 'nothing trained since the money pledge yet')
    assert.match(before.rule, /Money is not tied to particular machines/)
    const r3 = await coordinator.database.db.selectFrom('rounds').select('id').where('run_id', '=', runId).where('number', '=', 3).executeTakeFirstOrThrow()
    await seed.report(cpuNode, { id: r3.id, number: 3 }, { tokens: 700, computeSeconds: 450, at: new Date(Date.parse(entry.createdAt) + 5) })
    const statement = await anonymous.pledges.statement.query({ pledgeId: moneyPledge })
    assert.deepEqual(statement.rows.map((r) => [r.nodeName, r.tokens, r.share]), [['cpu-box', 700, 1]])
    close(statement.totals.cpuCoreHours, 1, 'the run’s CPU core-hours since')
    const nora = (await anonymous.pledges.forRun.query({ runId })).pledges.find((p) => p.amount === 40)!
    const since = await anonymous.pledges.statement.query({ pledgeId: nora.id })
    assert.deepEqual(since.labs.map((l) => l.name).sort(), ['CPU Lab', 'GPU Lab', 'Other Lab'], 'every lab’s work since the pledge')
    assert.equal(since.rows.every((r) => r.share === 1), true)
  })

  test('the statement CSV has one line per counted row, matching the JSON', async () => {
    const res = await fetch(new URL(`/api/pledges/${gpuPledge}/statement.csv`, coordinator.url))
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/csv/)
    assert.match(res.headers.get('content-disposition') ?? '', new RegExp(`attachment; filename="pledge-statement-${gpuPledge}.csv"`))
    const lines = (await res.text()).trimEnd().split('\r\n')
    assert.equal(lines[0], 'pledge_id,run_id,pledge_kind,ledger_seq,round,delivered_at,node,peer_id,organization,device_kind,device,compute_seconds,unit,hours_counted,tokens_counted,share_of_row,checkpoint_sha256')
    const statement = await anonymous.pledges.statement.query({ pledgeId: gpuPledge })
    assert.equal(lines.length, statement.rows.length + 1)
    const [first, second] = lines.slice(1).map((l) => l.split(','))
    assert.deepEqual(first!.slice(0, 5), [gpuPledge, runId, 'gpu_hours', String(statement.rows[0]!.seq), '2'])
    assert.deepEqual([first![6], first![8], first![9], first![12]], ['gpu-box', 'GPU Lab', 'gpu', 'gpu_hours'])
    close(Number(first![13]), 1200 / 3600, 'hours on line 1')
    assert.equal(first![16], statement.checkpoints[0]!.sha256)
    close(Number(second![15]), 1 / 3, 'share on line 2')
    assert.equal(second![16], '', 'the open round has no checkpoint yet')
    const sum = lines.slice(1).reduce((a, l) => a + Number(l.split(',')[13]), 0)
    close(sum, 0.5, 'hours in the CSV add up to the pledge')
  })

  test('bad and unknown ids get clear errors, from the API and the CSV route', async () => {
    const bad = await refusal(anonymous.pledges.statement.query({ pledgeId: 'not-a-pledge' }))
    assert.equal(bad.code, 'BAD_REQUEST')
    assert.match(bad.message, /a pledge id is a UUID/)
    const missing = await refusal(anonymous.pledges.statement.query({ pledgeId: '00000000-0000-4000-8000-000000000000' }))
    assert.equal(missing.code, 'NOT_FOUND')
    assert.match(missing.message, /no pledge 00000000-0000-4000-8000-000000000000; .*Pledges page/)
    assert.equal((await refusal(anonymous.pledges.forRun.query({ runId: '00000000-0000-4000-8000-000000000000' }))).code, 'NOT_FOUND')
    assert.equal((await refusal(anonymous.metrics.run.query({ runId: '00000000-0000-4000-8000-000000000000' }))).code, 'NOT_FOUND')
    assert.match((await refusal(anonymous.metrics.run.query({ runId: 'run-1' }))).message, /a run id is a UUID/)
    assert.equal((await refusal(gale.pledges.create.mutate({ runId, kind: 'gpu_hours', amount: 0 }))).code, 'BAD_REQUEST')
    const res400 = await fetch(new URL('/api/pledges/nope/statement.csv', coordinator.url))
    assert.equal(res400.status, 400)
    assert.match((await res400.json() as { error: string }).error, /a pledge id is a UUID/)
    const res404 = await fetch(new URL('/api/pledges/00000000-0000-4000-8000-000000000000/statement.csv', coordinator.url))
    assert.equal(res404.status, 404)
    assert.match((await res404.json() as { error: string }).error, /no pledge/)
  })

  test('statements are public like the pledge list and the ledger, and name no email; each funder lists only their own pledges', async () => {
    const text = JSON.stringify(await anonymous.pledges.statement.query({ pledgeId: gpuPledge }))
    assert.ok(!/@(gpu|cpu|solo|runs)\.test/.test(text), 'no email in a statement')
    assert.deepEqual((await cora.pledges.mine.query()).map((p) => p.id), [cpuPledge])
    assert.deepEqual((await gale.pledges.mine.query()).map((p) => p.id), [moneyPledge, gpuPledge])
    assert.equal((await refusal(anonymous.pledges.mine.query())).code, 'UNAUTHORIZED')
  })

  test('the seeded ledger is a real chain: it verifies, so statements are computed from checkable rows', async () => {
    const entries = await allLedgerEntries(anonymous, runId)
    const verdict = await verifyLedger(runId, entries)
    assert.equal(verdict.ok, true, JSON.stringify(verdict))
  })

  test('run metrics: throughput, nodes, tokens per lab per round, pledges and deliveries, and the unigram baseline computed once', async () => {
    const m = await anonymous.metrics.run.query({ runId })
    assert.deepEqual(m.rounds.map((r) => [r.round, r.nodes, r.reported]), [[1, 2, 2], [2, 3, 3]])
    close(m.rounds[0]!.tokensPerSecond, 3000 / 600, 'round 1 tokens/s')
    assert.deepEqual(m.labs.map((l) => l.name), ['Other Lab', 'GPU Lab', 'CPU Lab'])
    assert.deepEqual(m.labRounds.map((r) => r.tokens), [[2000, 1000, 0], [2000, 1000, 1500]])
    assert.deepEqual(m.pledges.map((p) => [p.kind, p.amount]), [['gpu_hours', 0.5], ['usd', 40], ['cpu_core_hours', 1], ['usd', 250]])
    close(m.delivered[1]!.cpuCoreHours, 2, 'round 2 CPU core-hours')
    assert.deepEqual(m.goals, { fundingGoalUsd: 1000, computeGoalGpuHours: 10 })

    // The baseline: the demo training shards' unigram model on the run's validation windows.
    const shards = await demoCorpusShards()
    const stored = await coordinator.database.db.selectFrom('runs').select(['unigram_baseline', 'spec']).where('id', '=', runId).executeTakeFirstOrThrow()
    const spec = stored.spec as { vocabSize: number }
    const vocab = new Float64Array(spec.vocabSize)
    for (const s of shards.train) addTokenCounts(vocab, s.tokens)
    const opts = { batches: 2, batchSize: 4, seqLen: 32 }
    close(m.baselineLoss!, unigramBaselineLoss(vocab, shards.validation.tokens, opts), 'baseline')
    assert.equal(stored.unigram_baseline, m.baselineLoss, 'stored with the run')
    // A context-free model fitted on other text cannot beat the targets' own entropy, nor be worse than uniform.
    const targets: number[] = []
    for (const start of validationWindowStarts(shards.validation.tokens.length, opts)) for (let i = start + 1; i <= start + 32; i++) targets.push(shards.validation.tokens[i]!)
    assert.ok(m.baselineLoss! >= unigramEntropy(targets) && m.baselineLoss! < Math.log(spec.vocabSize), `baseline ${m.baselineLoss}`)
    // Computed once: a changed stored value is what the next read returns.
    await coordinator.database.db.updateTable('runs').set({ unigram_baseline: 1.25 }).where('id', '=', runId).execute()
    assert.equal((await anonymous.metrics.run.query({ runId })).baselineLoss, 1.25)
  })
})

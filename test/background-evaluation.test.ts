/*
 * Validation losses too costly for the coordinator's event loop (large models) are measured off
 * it after their round closes. `--inline-eval-gflop 0` sends every checkpoint there, so a tiny run
 * shows it: the run completes without waiting for them, its checkpoints' losses arrive
 * afterwards, on the checkpoint rows, the round rows and the run's summary. On the worker thread
 * (`--evaluator typescript`) each is the number the event loop would have measured to the bit
 * (recomputed here from the downloaded weights); by PyTorch (`--evaluator torch`, Debian's
 * python3-torch in CI) it agrees to float32 rounding.
 */
import { test } from 'vitest'
import assert from 'node:assert/strict'
import pg from 'pg'
import { createTestDatabase } from './support/postgres.ts'
import { demoCorpusShards, paramSetFromSafetensors, presetConfig, validationLoss } from '@barnraise/trainer'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { apiClient } from './support/api-client.ts'
import { createRunViaCli, tinyRunSpec, waitForRun } from './support/runs.ts'

test('checkpoints measured on a worker thread get the event loop\'s losses, after the round closed', { timeout: 240_000 }, async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url, BARNRAISE_LOG: 'info' }
  let coordinator: RunningCoordinator = await startCoordinator({ env, args: ['--inline-eval-gflop', '0', '--evaluator', 'typescript'] })
  let agent: RunningAgent | undefined
  try {
    agent = await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Eval Lab') })
    const windows = { batches: 2, batchSize: 2, seqLen: 16 }
    const spec = tinyRunSpec({ rounds: 4, retention: { keepEvery: 1 }, evalBatches: windows.batches, recipe: { innerSteps: 4, batchSize: windows.batchSize, seqLen: windows.seqLen, innerLr: 0.003, warmupSteps: 1 } })
    const runId = await createRunViaCli(coordinator.dataDir, spec, env)
    const logs = { coordinator: () => coordinator.process.output(), agent: () => agent!.output() }
    const lastLoss = async (): Promise<number | null> => {
      for (let i = 0; i < 200; i++) {
        const last = (await apiClient(coordinator.url).runs.get.query({ id: runId })).checkpoints.at(-1)
        if (last?.round === 4 && last.valLoss !== null) return last.valLoss
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
      return null
    }
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 180_000, logs)
    // The last checkpoint is never overtaken: its loss arrives.
    const api = apiClient(coordinator.url)
    let detail = await api.runs.get.query({ id: runId })
    let listed = detail.checkpoints
    for (let i = 0; i < 200; i++) {
      detail = await api.runs.get.query({ id: runId })
      listed = detail.checkpoints
      if (listed.at(-1)?.round === 4 && listed.at(-1)?.valLoss !== null) break
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    assert.equal(listed.at(-1)?.round, 4)
    assert.notEqual(listed.at(-1)?.valLoss, null, `the last checkpoint's loss arrived\n${coordinator.process.output().split('\n').slice(-20).join('\n')}`)
    assert.match(coordinator.process.output(), /checkpoint validated on a worker thread/)
    // Each loss measured is what the event loop measures on those weights, to the bit.
    const { validation } = await demoCorpusShards()
    const config = presetConfig('tiny')
    let measured = 0
    for (const c of listed.filter((c) => c.valLoss !== null)) {
      const res = await fetch(new URL(`api/checkpoints/${c.sha256}/model.safetensors`, coordinator.url))
      assert.equal(res.status, 200)
      const params = paramSetFromSafetensors(config, new Uint8Array(await res.arrayBuffer()))
      assert.equal(c.valLoss, validationLoss(params, validation.tokens, windows), `round ${c.round}`)
      measured++
    }
    assert.ok(measured >= 2, `the initial and the last checkpoint at least (${measured})`)
    assert.equal(detail.rounds.find((r) => r.number === 4)?.valLoss, listed.at(-1)!.valLoss, 'the round row has it too')
    assert.equal(detail.summary.latestValLoss, listed.at(-1)!.valLoss, 'the run\'s summary shows it')

    // A loss still waiting when the coordinator stops is measured after its restart.
    const before = listed.at(-1)!.valLoss
    await coordinator.stop()
    const client = new pg.Client({ connectionString: database.url })
    await client.connect()
    try {
      await client.query('update checkpoints set val_loss = null where run_id = $1 and round = 4', [runId])
    } finally {
      await client.end()
    }
    coordinator = await startCoordinator({ env, dataDir: coordinator.dataDir, args: ['--inline-eval-gflop', '0', '--evaluator', 'typescript'] })
    assert.equal(await lastLoss(), before, `measured again after the restart\n${coordinator.process.output().split('\n').slice(-20).join('\n')}`)
  } finally {
    await agent?.stop()
    await coordinator.stop()
    await database.drop()
  }
})

test('--evaluator torch measures them with PyTorch: each within 1e-5 of the TypeScript forward pass', { timeout: 240_000 }, async () => {
  const database = await createTestDatabase()
  const env = { DATABASE_URL: database.url, BARNRAISE_LOG: 'info' }
  // No --python: the coordinator finds the interpreter with torch as the agent does.
  const coordinator: RunningCoordinator = await startCoordinator({ env, args: ['--inline-eval-gflop', '0', '--evaluator', 'torch', '--eval-device', 'cpu', '--torch-eval-gflop', '0'] })
  let agent: RunningAgent | undefined
  try {
    assert.match(coordinator.process.output(), /validation losses off the event loop: PyTorch \S+ on cpu/)
    agent = await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Torch Eval Lab') })
    const windows = { batches: 2, batchSize: 2, seqLen: 16 }
    const spec = tinyRunSpec({ rounds: 2, retention: { keepEvery: 1 }, evalBatches: windows.batches, recipe: { innerSteps: 4, batchSize: windows.batchSize, seqLen: windows.seqLen, innerLr: 0.003, warmupSteps: 1 } })
    const runId = await createRunViaCli(coordinator.dataDir, spec, env)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 180_000, { coordinator: () => coordinator.process.output(), agent: () => agent!.output() })
    const api = apiClient(coordinator.url)
    let listed = (await api.runs.get.query({ id: runId })).checkpoints
    for (let i = 0; i < 200 && !(listed.at(-1)?.round === 2 && listed.at(-1)?.valLoss !== null); i++) {
      await new Promise((resolve) => setTimeout(resolve, 250))
      listed = (await api.runs.get.query({ id: runId })).checkpoints
    }
    assert.notEqual(listed.at(-1)?.valLoss, null, `the last checkpoint's loss arrived\n${coordinator.process.output().split('\n').slice(-20).join('\n')}`)
    assert.match(coordinator.process.output(), /checkpoint validated with PyTorch/)
    assert.doesNotMatch(coordinator.process.output(), /torch evaluation failed/)
    const { validation } = await demoCorpusShards()
    const config = presetConfig('tiny')
    for (const c of listed.filter((c) => c.valLoss !== null)) {
      const res = await fetch(new URL(`api/checkpoints/${c.sha256}/model.safetensors`, coordinator.url))
      const expected = validationLoss(paramSetFromSafetensors(config, new Uint8Array(await res.arrayBuffer())), validation.tokens, windows)
      assert.ok(Math.abs(c.valLoss! - expected) <= 1e-5 * expected, `round ${c.round}: torch ${c.valLoss}, TypeScript ${expected}`)
    }
  } finally {
    await agent?.stop()
    await coordinator.stop()
    await database.drop()
  }
})

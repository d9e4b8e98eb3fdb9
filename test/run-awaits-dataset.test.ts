// A run launched on a dataset that is still uploading waits for it: the run page's detail says
// what it waits for, the run starts by itself once the dataset is tokenized (the organizer
// asked it to start), and a real agent trains it. A run on a dataset that fails to tokenize
// fails with that dataset's reason instead of waiting for ever.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { sessionClientWithCookie } from './support/session-client.ts'
import { tinyRunSpec, waitForRun } from './support/runs.ts'
import { REPO_ROOT } from './support/processes.ts'

test('a run launched while its dataset uploads waits, starts itself when the dataset is tokenized and trains; one whose dataset fails, fails with its reason', async () => {
  const coordinator = await startCoordinator({ args: ['--open-organizing'] })
  let agent: RunningAgent | undefined
  try {
    const admin = sessionClientWithCookie(coordinator.url)
    await admin.client.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', setupCode: coordinator.setupCode! })
    const organizer = sessionClientWithCookie(coordinator.url)
    await organizer.client.auth.signUp.mutate({ email: 'ada@runs.test', password: 'ada-password-1', displayName: 'Ada', role: 'organizer' })
    const put = async (id: string, bytes: Uint8Array, start: number, total: number): Promise<number> => await new Promise((resolve, reject) => {
      const req = request(new URL(`api/datasets/${id}/file`, coordinator.url), { method: 'PUT', headers: { cookie: organizer.cookie(), 'content-type': 'application/octet-stream', 'content-length': bytes.length, 'content-range': `bytes ${start}-${start + bytes.length - 1}/${total}` } }, (res) => {
        res.resume()
        res.on('end', () => { resolve(res.statusCode ?? 0) })
      })
      req.on('error', reject)
      req.end(bytes)
    })

    const text = gunzipSync(await readFile(join(REPO_ROOT, 'data/corpus/kjv.txt.gz'))).toString('utf8')
    const jsonl = Buffer.from(text.split('\n').filter((l) => l.trim().length > 20).slice(0, 4000).map((l) => JSON.stringify({ text: l })).join('\n') + '\n')
    const dataset = await organizer.client.datasets.create.mutate({ name: 'Verses', format: 'jsonl', field: 'text', tokenizer: 'gpt2-1k', fileName: 'verses.jsonl', fileBytes: jsonl.length })
    const half = Math.floor(jsonl.length / 2)
    assert.equal(await put(dataset.id, jsonl.subarray(0, half), 0, jsonl.length), 200)

    const spec = tinyRunSpec({ name: 'waits for its data', dataset: { source: 'dataset', id: dataset.id }, rounds: 2, recipe: { innerSteps: 4, batchSize: 2, seqLen: 32, innerLr: 0.003, warmupSteps: 1 } })
    const { id: runId } = await organizer.client.runs.create.mutate({ spec, start: true })
    const waiting = await organizer.client.runs.get.query({ id: runId })
    assert.equal(waiting.summary.status, 'draft', 'it waits, not runs')
    assert.equal(waiting.awaiting?.dataset.name, 'Verses')
    assert.ok(!('badRowExamples' in waiting.awaiting!.dataset), 'the public page shows the dataset\'s progress, not its rows')
    assert.equal(waiting.awaiting?.dataset.status, 'uploading')
    assert.equal(waiting.awaiting?.startWhenReady, true)
    assert.equal(waiting.spec.trainShards.length, 0)
    assert.equal(waiting.spec.vocabSize, 1025, 'the model already follows the tokenizer')

    const token = await coordinator.createToken('Waiting Lab', { uses: 1 })
    agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'patient' })
    assert.equal(await put(dataset.id, jsonl.subarray(half), half, jsonl.length), 200)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000, { coordinator: coordinator.process.output, agent: agent.output })
    const done = await organizer.client.runs.get.query({ id: runId })
    assert.equal(done.awaiting, null)
    assert.ok(done.spec.trainShards.length > 0 && done.spec.validationShard.tokens > 0, 'the shards went into the spec')
    assert.ok(done.spec.documentIndex !== null, 'with the dataset\'s document index')
    assert.equal(done.checkpoints.at(-1)!.round, 2)
    assert.ok(done.checkpoints.at(-1)!.valLoss! < done.checkpoints[0]!.valLoss!, 'it trained')

    // A file that says it is Parquet and is not: tokenizing fails, and the run waiting on it too.
    const bogus = Buffer.from('this is not a parquet file at all, only text\n'.repeat(200))
    const broken = await organizer.client.datasets.create.mutate({ name: 'Broken', format: 'parquet', field: 'text', tokenizer: 'gpt2-1k', fileName: 'broken.parquet', fileBytes: bogus.length })
    const { id: doomed } = await organizer.client.runs.create.mutate({ spec: { ...spec, name: 'waits for broken data', dataset: { source: 'dataset', id: broken.id } }, start: true })
    assert.equal(await put(broken.id, bogus, 0, bogus.length), 200)
    await waitForRun(coordinator.url, doomed, (r) => r.status === 'failed', 60_000)
    const detail = await organizer.client.runs.get.query({ id: doomed })
    assert.equal(detail.summary.status, 'failed')
    assert.match(detail.summary.failureReason ?? '', /^its dataset "Broken" could not be tokenized: /)
  } finally {
    await agent?.stop()
    await coordinator.stop()
  }
})

// A dataset given as a manifest of pre-tokenized shard URLs: the coordinator fetches and checks
// only the validation shard; the agent fetches each train shard from its URL and checks its
// sha256; the coordinator never holds the train bytes. A manifest that lies is refused.
import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { UPLOAD_BUILD_DEFAULTS, buildDataset, catalogTokenizer, openReader } from '@barnraise/datasets'
import { startAgent, startCoordinator, tempDir } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { REPO_ROOT, runCli } from './support/processes.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

describe('datasets as shard URLs', () => {
  test('agents fetch and check train shards from their URLs; the coordinator holds only the validation shard; a manifest that lies is refused', async () => {
    // Shards made offline (as an organizer's pipeline would), served by a plain HTTP server.
    const dir = await tempDir('shard-urls')
    const verses = gunzipSync(await readFile(join(REPO_ROOT, 'data/corpus/kjv.txt.gz'))).toString('utf8').split('\n').filter((l) => l.trim().length > 20).slice(0, 6000)
    await writeFile(join(dir, 'verses.jsonl'), verses.map((text) => JSON.stringify({ text })).join('\n'))
    const shards = new Map<string, Uint8Array>()
    const built = await buildDataset({ reader: await openReader(join(dir, 'verses.jsonl'), 'jsonl', 'text'), tokenizer: catalogTokenizer('gpt2-1k'), source: 'verses.jsonl', ...UPLOAD_BUILD_DEFAULTS, shardTokens: 40_000, onShard: async (bytes, m) => { shards.set(m.sha256, bytes) } })
    assert.ok(built.train.length >= 3)
    const served: string[] = []
    const server = createServer((req, res) => {
      const sha = (req.url ?? '').replace(/^\/shards\//, '')
      served.push(sha)
      const bytes = shards.get(sha)
      if (bytes === undefined) { res.writeHead(404); res.end(); return }
      res.end(bytes)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/shards/`
    const manifest = {
      source: 'urls',
      tokenizer: 'gpt2-1k',
      train: built.train.map((s) => ({ url: base + s.sha256, sha256: s.sha256, tokens: s.tokens })),
      validation: { url: base + built.validation.sha256, sha256: built.validation.sha256 }
    }
    const coordinator = await startCoordinator({ args: ['--allow-private-shard-urls'] })
    let agent: RunningAgent | undefined
    try {
      // Lies are refused at creation, with the reason: a validation shard whose bytes do not match.
      const lying = { ...manifest, validation: { url: base + built.train[0]!.sha256, sha256: built.validation.sha256 } }
      const specFile = join(dir, 'lying.json')
      await writeFile(specFile, JSON.stringify(tinyRunSpec({ dataset: lying })))
      const refused = await runCli('coordinator/src/cli.ts', ['run', 'create', '--spec', specFile, '--data-dir', coordinator.dataDir])
      assert.notEqual(refused.code, 0)
      assert.match(refused.output, /does not have the sha256 the manifest gives/)
      await writeFile(specFile, JSON.stringify(tinyRunSpec({ dataset: { ...manifest, tokenizer: 'gpt2' } })))
      assert.match((await runCli('coordinator/src/cli.ts', ['run', 'create', '--spec', specFile, '--data-dir', coordinator.dataDir])).output, /vocabulary of 1025 but tokenizer gpt2 has 50257/)

      const token = await coordinator.createToken('URL Lab', { uses: 1 })
      agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'fetcher', args: ['--allow-private-shard-urls'] })
      const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ dataset: manifest, rounds: 2, recipe: { innerSteps: 10, batchSize: 8, seqLen: 32, innerLr: 0.005, warmupSteps: 2, outerMomentum: 0.5 } }))
      await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 180_000)
      const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
      assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss!, `validation loss falls: ${JSON.stringify(checkpoints.map((c) => c.valLoss))}`)
      const fetchedTrain = built.train.filter((s) => served.includes(s.sha256))
      assert.ok(fetchedTrain.length >= 1, 'the agent fetched train shards from their URLs')
      for (const s of built.train) assert.ok(!existsSync(join(coordinator.dataDir, 'blobs', s.sha256.slice(0, 2), s.sha256)), 'the coordinator holds no train shard')
      assert.ok(existsSync(join(coordinator.dataDir, 'blobs', built.validation.sha256.slice(0, 2), built.validation.sha256)), 'it holds the validation shard it evaluates on')
      const config = await getJson<{ vocab_size: number }>(coordinator.url, `api/checkpoints/${checkpoints.at(-1)!.sha256}/config.json`)
      assert.equal(config.vocab_size, 1025)
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- coordinator ---\n${coordinator.process.output().split('\n').slice(-30).join('\n')}\n--- agent ---\n${agent?.output().split('\n').slice(-30).join('\n') ?? ''}`)
    } finally {
      await agent?.stop()
      await coordinator.stop()
      server.close()
    }
  })
})

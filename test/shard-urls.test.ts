// A dataset given as a manifest of pre-tokenized shard URLs: the coordinator fetches and checks
// only the validation shard; the agent fetches each train shard from its URL and checks its
// sha256; the coordinator never holds the train bytes. A manifest that lies is refused, and a
// train shard whose bytes at its URL are not the ones the manifest names is declined by the
// agent with the reason on the ledger.
import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { UPLOAD_BUILD_DEFAULTS, buildDataset, catalogTokenizer, openReader } from '@barnraise/datasets'
import { startAgent, startCoordinator, tempDir } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { REPO_ROOT, runCli } from './support/processes.ts'
import { createRunViaCli, getJson, logTails, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

/** Shards made offline from the first 6,000 KJV verses, as an organizer's pipeline would. */
async function makeShards (dir: string): Promise<{ shards: Map<string, Uint8Array>, built: Awaited<ReturnType<typeof buildDataset>> }> {
  const verses = gunzipSync(await readFile(join(REPO_ROOT, 'data/corpus/kjv.txt.gz'))).toString('utf8').split('\n').filter((l) => l.trim().length > 20).slice(0, 6000)
  await writeFile(join(dir, 'verses.jsonl'), verses.map((text) => JSON.stringify({ text })).join('\n'))
  const shards = new Map<string, Uint8Array>()
  const built = await buildDataset({ reader: await openReader(join(dir, 'verses.jsonl'), 'jsonl', 'text'), tokenizer: catalogTokenizer('gpt2-1k'), source: 'verses.jsonl', ...UPLOAD_BUILD_DEFAULTS, shardTokens: 40_000, onShard: async (bytes, m) => { shards.set(m.sha256, bytes) } })
  assert.ok(built.train.length >= 3)
  return { shards, built }
}

/** A plain HTTP server on loopback answering `/<folder>/<name>` from `files`; `served` lists the paths asked for. */
async function serveFiles (files: Map<string, Uint8Array>): Promise<{ server: Server, base: string, served: string[] }> {
  const served: string[] = []
  const server = createServer((req, res) => {
    const path = req.url ?? ''
    served.push(path)
    const bytes = files.get(path)
    if (bytes === undefined) { res.writeHead(404); res.end(); return }
    res.end(bytes)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, served }
}

describe('datasets as shard URLs', () => {
  test('agents fetch and check train shards from their URLs; the coordinator holds only the validation shard and the document index; a manifest that lies is refused', async () => {
    const dir = await tempDir('shard-urls')
    const { shards, built } = await makeShards(dir)
    // The document index as `barnraise-agent shard` writes it, and one that describes other shards.
    const index = Buffer.from(JSON.stringify(built.index) + '\n')
    const otherIndex = Buffer.from(JSON.stringify({ ...built.index, shards: built.index.shards.slice(1) }) + '\n')
    const shuffledIndex = Buffer.from(JSON.stringify({ ...built.index, documents: [...built.index.documents].reverse() }) + '\n')
    const { server, base: origin, served } = await serveFiles(new Map([
      ...[...shards].map(([sha, bytes]) => [`/shards/${sha}`, bytes] as const),
      ['/shards/documents.json', index], ['/shards/other-documents.json', otherIndex], ['/shards/shuffled-documents.json', shuffledIndex]
    ]))
    const base = `${origin}/shards/`
    const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')
    const manifest = {
      source: 'urls',
      tokenizer: 'gpt2-1k',
      train: built.train.map((s) => ({ url: base + s.sha256, sha256: s.sha256, tokens: s.tokens })),
      validation: { url: base + built.validation.sha256, sha256: built.validation.sha256 },
      documents: { url: `${base}documents.json`, sha256: sha(index) }
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
      // An index whose bytes are not the ones named, or that describes other shards, is refused too.
      await writeFile(specFile, JSON.stringify(tinyRunSpec({ dataset: { ...manifest, documents: { url: `${base}other-documents.json`, sha256: sha(index) } } })))
      assert.match((await runCli('coordinator/src/cli.ts', ['run', 'create', '--spec', specFile, '--data-dir', coordinator.dataDir])).output, /the document index at \S+ does not have the sha256 the manifest gives/)
      await writeFile(specFile, JSON.stringify(tinyRunSpec({ dataset: { ...manifest, documents: { url: `${base}other-documents.json`, sha256: sha(otherIndex) } } })))
      assert.match((await runCli('coordinator/src/cli.ts', ['run', 'create', '--spec', specFile, '--data-dir', coordinator.dataDir])).output, /describes other train shards than the manifest lists/)
      await writeFile(specFile, JSON.stringify(tinyRunSpec({ dataset: { ...manifest, documents: { url: `${base}shuffled-documents.json`, sha256: sha(shuffledIndex) } } })))
      assert.match((await runCli('coordinator/src/cli.ts', ['run', 'create', '--spec', specFile, '--data-dir', coordinator.dataDir])).output, /the document index is out of order or out of range at "line \d+"/)
      assert.deepEqual(await getJson<unknown[]>(coordinator.url, 'api/runs'), [], 'no refused manifest made a run')

      const token = await coordinator.createToken('URL Lab', { uses: 1 })
      agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'fetcher', args: ['--allow-private-shard-urls'] })
      const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ dataset: manifest, rounds: 2, recipe: { innerSteps: 10, batchSize: 8, seqLen: 32, innerLr: 0.005, warmupSteps: 2, outerMomentum: 0.5 } }))
      await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 180_000)
      const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
      assert.ok(checkpoints.at(-1)!.valLoss! < checkpoints[0]!.valLoss!, `validation loss falls: ${JSON.stringify(checkpoints.map((c) => c.valLoss))}`)
      const fetchedTrain = built.train.filter((s) => served.includes(`/shards/${s.sha256}`))
      assert.ok(fetchedTrain.length >= 1, 'the agent fetched train shards from their URLs')
      for (const s of built.train) assert.ok(!existsSync(join(coordinator.dataDir, 'blobs', s.sha256.slice(0, 2), s.sha256)), 'the coordinator holds no train shard')
      assert.ok(existsSync(join(coordinator.dataDir, 'blobs', built.validation.sha256.slice(0, 2), built.validation.sha256)), 'it holds the validation shard it evaluates on')
      const config = await getJson<{ vocab_size: number }>(coordinator.url, `api/checkpoints/${checkpoints.at(-1)!.sha256}/config.json`)
      assert.equal(config.vocab_size, 1025)
      // What the run trained on is public as for an uploaded dataset: the verses, by line.
      const trained = await getJson<{ source: string, documents: Array<{ locator: string, tokens: number, trainedTokens: number }>, heldOut: string[] }>(coordinator.url, `api/runs/${runId}/documents.json`)
      assert.equal(trained.source, 'verses.jsonl')
      assert.ok(trained.documents.length > 0)
      for (const d of trained.documents) {
        assert.match(d.locator, /^line \d+$/)
        assert.ok(d.trainedTokens > 0 && d.trainedTokens <= d.tokens)
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}${logTails({ coordinator: coordinator.process.output, agent: () => agent?.output() ?? '' })}`)
    } finally {
      await agent?.stop()
      await coordinator.stop()
      server.close()
    }
  })

  test('a train shard whose bytes at its URL do not have the sha256 the manifest names is declined by the agent, with the reason on the ledger, and never used', async () => {
    const dir = await tempDir('shard-urls-tampered')
    const { shards, built } = await makeShards(dir)
    // The validation shard is served as it is (the coordinator checks it at creation); every
    // train shard's URL serves its bytes with the last one changed, as a host that swapped or
    // corrupted the file would.
    const files = new Map([[`/shards/${built.validation.sha256}`, shards.get(built.validation.sha256)!]])
    const actual = new Map<string, string>()
    for (const s of built.train) {
      const bytes = Uint8Array.from(shards.get(s.sha256)!)
      bytes[bytes.length - 1]! ^= 0xff
      files.set(`/tampered/${s.sha256}`, bytes)
      actual.set(s.sha256, createHash('sha256').update(bytes).digest('hex'))
    }
    const { server, base, served } = await serveFiles(files)
    const manifest = {
      source: 'urls',
      tokenizer: 'gpt2-1k',
      train: built.train.map((s) => ({ url: `${base}/tampered/${s.sha256}`, sha256: s.sha256, tokens: s.tokens })),
      validation: { url: `${base}/shards/${built.validation.sha256}`, sha256: built.validation.sha256 }
    }
    const coordinator = await startCoordinator({ args: ['--allow-private-shard-urls'] })
    let agent: RunningAgent | undefined
    try {
      const token = await coordinator.createToken('URL Lab', { uses: 1 })
      agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'careful', args: ['--allow-private-shard-urls'] })
      const runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({ dataset: manifest, rounds: 2 }))
      type LedgerRow = { round: number, outcome: string, peerId: string, tokens: number, reason: string | null }
      const deadline = Date.now() + 90_000
      let ledger: LedgerRow[] = []
      while (!ledger.some((e) => e.peerId === agent!.peerId)) {
        if (Date.now() > deadline) throw new Error('no ledger row for the agent\'s unit')
        await new Promise((resolve) => setTimeout(resolve, 500))
        ledger = await getJson<LedgerRow[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
      }
      const mine = ledger.filter((e) => e.peerId === agent!.peerId)
      for (const e of mine) {
        assert.equal(e.outcome, 'refused')
        assert.equal(e.tokens, 0)
        const m = /^ERR_DECLINED: the node declined the unit \(ERR_SHARD_UNAVAILABLE\): the shard at (\S+) has sha256 ([0-9a-f]{64}), not the ([0-9a-f]{64}) the run names; not used$/.exec(e.reason ?? '')
        assert.ok(m !== null, `the reason says which shard and why: ${e.reason}`)
        const [, url, got, named] = m
        assert.equal(url, `${base}/tampered/${named}`)
        assert.equal(got, actual.get(named!))
      }
      assert.match(agent.output(), /declined the work unit \(ERR_SHARD_UNAVAILABLE\): the shard at http:\/\/127\.0\.0\.1:\d+\/tampered\/[0-9a-f]{64} has sha256/)
      assert.ok(served.some((p) => p.startsWith('/tampered/')), 'the agent fetched the shard from its URL')
      // Nothing of a shard that failed its check is kept, so no later unit can read it.
      for (const s of built.train) {
        assert.ok(!existsSync(join(agent.dataDir, 'blobs', s.sha256)) && !existsSync(join(agent.dataDir, 'blobs', `${s.sha256}.part`)), 'the agent kept no bytes of a shard that failed its check')
      }
      const run = (await getJson<Array<{ id: string, status: string }>>(coordinator.url, 'api/runs')).find((r) => r.id === runId)
      assert.notEqual(run?.status, 'completed', 'no round was trained on the shards')
    } catch (err) {
      throw new Error(`${(err as Error).message}${logTails({ coordinator: coordinator.process.output, agent: () => agent?.output() ?? '' })}`)
    } finally {
      await agent?.stop()
      await coordinator.stop()
      server.close()
    }
  })
})

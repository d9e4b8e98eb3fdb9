// Real data end to end: a JSONL and a Parquet dataset (several MB, made here) uploaded in
// resumable pieces, tokenized with BPE on the coordinator's worker, trained on by a real agent,
// and a checkpoint folder whose tokenizer round-trips a sample in both the JS and the Rust
// (AutoTokenizer's) implementation; then "which documents went into checkpoint N", checked
// against the accepted work units.
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { request } from 'node:http'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { parquetWriteFile } from 'hyparquet-writer'
import { Tokenizer as JsTokenizer } from '@huggingface/tokenizers'
import { Tokenizer as RustTokenizer } from 'tokenizers'
import { catalogTokenizer } from '@barnraise/datasets'
import { decodeShard } from '@barnraise/trainer'
import { startAgent, startCoordinator, tempDir } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { sessionClientWithCookie } from './support/session-client.ts'
import { getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'
import { REPO_ROOT } from './support/processes.ts'

const SAMPLE = 'And God said, Let there be light: and there was light. It\'s 2026 — naïve café!'

/** KJV verses as documents: real English, about 4.3 MB in all. */
async function verses (): Promise<string[]> {
  const text = gunzipSync(await readFile(join(REPO_ROOT, 'data/corpus/kjv.txt.gz'))).toString('utf8')
  return text.split('\n').map((l) => l.trim()).filter((l) => l.length > 20)
}

interface Dataset { id: string, status: string, receivedBytes: number, documents: number, badRows: number, badRowExamples: Array<{ locator: string, reason: string }>, trainTokens: number, validationTokens: number, error: string | null, tokenizer: string }

describe('datasets from real formats', () => {
  let coordinator: RunningCoordinator
  let organizer: ReturnType<typeof sessionClientWithCookie>
  let agent: RunningAgent | undefined
  let dir: string
  let lines: string[]

  beforeAll(async () => {
    coordinator = await startCoordinator({ args: ['--open-organizing'] })
    const admin = sessionClientWithCookie(coordinator.url)
    await admin.client.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', setupCode: coordinator.setupCode! })
    organizer = sessionClientWithCookie(coordinator.url)
    await organizer.client.auth.signUp.mutate({ email: 'ada@runs.test', password: 'ada-password-1', displayName: 'Ada', role: 'organizer' })
    dir = await tempDir('datasets')
    lines = await verses()
  })
  afterAll(async () => {
    await agent?.stop()
    await coordinator.stop()
  })

  /** PUT one piece of a dataset file; resolves to the status and JSON body. */
  function putPiece (id: string, bytes: Uint8Array, start: number, total: number, opts: { cutAfter?: number } = {}): Promise<{ status: number, body: Record<string, unknown> }> {
    const url = new URL(`api/datasets/${id}/file`, coordinator.url)
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'PUT', headers: { cookie: organizer.cookie(), 'content-type': 'application/octet-stream', 'content-length': bytes.length, 'content-range': `bytes ${start}-${start + bytes.length - 1}/${total}` } }, (res) => {
        let text = ''
        res.on('data', (c: Buffer) => { text += c.toString() })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }) })
      })
      req.on('error', (err) => { if (opts.cutAfter !== undefined) resolve({ status: 0, body: {} }); else reject(err) })
      if (opts.cutAfter !== undefined) {
        // A connection that drops halfway through a piece.
        req.write(bytes.subarray(0, opts.cutAfter), () => { setTimeout(() => { req.destroy() }, 100) })
      } else {
        req.end(bytes)
      }
    })
  }

  async function waitReady (id: string): Promise<Dataset> {
    const deadline = Date.now() + 240_000
    for (;;) {
      const d = await organizer.client.datasets.get.query({ id }) as Dataset
      if (d.status === 'ready' || d.status === 'failed') return d
      if (Date.now() > deadline) throw new Error(`dataset still ${d.status}`)
      await new Promise((r) => setTimeout(r, 500))
    }
  }

  /** Uploads a file in 1 MiB pieces, surviving a dropped connection and a piece sent from the wrong place. */
  async function upload (file: string, meta: { name: string, format: 'jsonl' | 'parquet', field: string, tokenizer: string }): Promise<Dataset> {
    const bytes = await readFile(file)
    const created = await organizer.client.datasets.create.mutate({ ...meta, fileName: file.split('/').at(-1)!, fileBytes: bytes.length })
    const piece = 1024 * 1024
    let at = 0
    let tricks = 0
    while (at < bytes.length) {
      const chunk = bytes.subarray(at, Math.min(at + piece, bytes.length))
      if (tricks === 0 && at > 0) {
        tricks++
        const cut = await putPiece(created.id, chunk, at, bytes.length, { cutAfter: 1000 })
        assert.notEqual(cut.status, 200)
        const wrong = await putPiece(created.id, chunk, at + 10, bytes.length)
        assert.equal(wrong.status, 409)
        assert.equal(wrong.body.receivedBytes, at, 'the dropped piece left nothing behind: the upload resumes where it stood')
        continue
      }
      let res = await putPiece(created.id, chunk, at, bytes.length)
      // Until the server has noticed the dropped connection, that piece still holds the upload.
      for (let i = 0; res.status === 429 && i < 50; i++) {
        await new Promise((r) => setTimeout(r, 100))
        res = await putPiece(created.id, chunk, at, bytes.length)
      }
      assert.equal(res.status, 200, JSON.stringify(res.body))
      at = Number(res.body.receivedBytes)
    }
    return await waitReady(created.id)
  }

  test('a JSONL and a Parquet dataset are tokenized with BPE, trained on, and their checkpoints carry a tokenizer that round-trips text; the documents of a checkpoint are the accepted units\' documents', async () => {
    // JSONL with some bad rows; the text is in "text".
    const jsonlRows = lines.map((l, i) => JSON.stringify({ id: i, text: l }))
    jsonlRows.splice(100, 0, '{"text": broken', JSON.stringify({ id: 'x', body: 'no text field' }))
    await writeFile(join(dir, 'kjv.jsonl'), jsonlRows.join('\n') + '\n')
    assert.ok(jsonlRows.join('\n').length > 4_000_000, 'several MB')
    // Parquet with the text in "content" and a null: every verse, uncompressed (as some exporters
    // write it), so the file is as large as its text; Snappy pages are read in build-dataset.test.ts.
    const content: Array<string | null> = [...lines]
    content[5] = null
    parquetWriteFile({ filename: join(dir, 'kjv.parquet'), codec: 'UNCOMPRESSED', columnData: [{ name: 'n', data: content.map((_, i) => i), type: 'INT32' }, { name: 'content', data: content, type: 'STRING' }], rowGroupSize: 5000 })
    assert.ok((await stat(join(dir, 'kjv.parquet'))).size > 4_000_000, 'several MB')

    // The Parquet dataset uses an uploaded tokenizer.json (the same vocabulary, as a file).
    const tokenizerJson = JSON.stringify(catalogTokenizer('gpt2-1k').huggingFaceFiles(256).get('tokenizer.json'))
    const tokRes = await fetch(new URL('api/tokenizers', coordinator.url), { method: 'PUT', headers: { cookie: organizer.cookie(), 'content-type': 'application/json' }, body: tokenizerJson })
    assert.equal(tokRes.status, 200)
    const uploadedTok = await tokRes.json() as { name: string, vocabSize: number }
    assert.match(uploadedTok.name, /^sha256:[0-9a-f]{64}$/)
    assert.equal(uploadedTok.vocabSize, 1025)
    const badTok = await fetch(new URL('api/tokenizers', coordinator.url), { method: 'PUT', headers: { cookie: organizer.cookie(), 'content-type': 'application/json' }, body: '{"model": {}}' })
    assert.equal(badTok.status, 400)

    const jsonl = await upload(join(dir, 'kjv.jsonl'), { name: 'KJV verses (JSONL)', format: 'jsonl', field: 'text', tokenizer: 'gpt2-1k' })
    assert.equal(jsonl.status, 'ready', jsonl.error ?? '')
    assert.equal(jsonl.documents, lines.length)
    assert.equal(jsonl.badRows, 2)
    assert.deepEqual(jsonl.badRowExamples.map((e) => e.locator), ['line 101', 'line 102'])
    assert.ok(jsonl.trainTokens > 900_000, `${jsonl.trainTokens} train tokens`)
    const parquet = await upload(join(dir, 'kjv.parquet'), { name: 'KJV verses (Parquet)', format: 'parquet', field: 'content', tokenizer: uploadedTok.name })
    assert.equal(parquet.status, 'ready', parquet.error ?? '')
    assert.equal(parquet.documents, lines.length - 1)
    assert.deepEqual(parquet.badRowExamples, [{ locator: 'row 5', reason: '"content" is null' }])

    const preview = await organizer.client.datasets.preview.query({ tokenizer: 'gpt2-1k', text: 'In the beginning' })
    assert.deepEqual(preview.pieces.join(''), 'In the beginning')

    const token = await coordinator.createToken('Data Lab', { uses: 1 })
    agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'reader' })
    for (const dataset of [jsonl, parquet]) {
      const spec = tinyRunSpec({ name: `on ${dataset.id}`, dataset: { source: 'dataset', id: dataset.id }, rounds: 2, recipe: { innerSteps: 10, batchSize: 8, seqLen: 32, innerLr: 0.005, warmupSteps: 2, outerMomentum: 0.5 } })
      const { id: runId } = await organizer.client.runs.create.mutate({ spec })
      await organizer.client.runs.setStatus.mutate({ id: runId, action: 'start' })
      await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 240_000)
      const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
      const last = checkpoints.at(-1)!
      assert.equal(last.round, 2)
      assert.ok(last.valLoss! < checkpoints[0]!.valLoss!, `training on the dataset lowers validation loss: ${JSON.stringify(checkpoints.map((c) => c.valLoss))}`)
      const config = await getJson<{ vocab_size: number }>(coordinator.url, `api/checkpoints/${last.sha256}/config.json`)
      assert.equal(config.vocab_size, 1025, 'the preset\'s vocabulary follows the tokenizer')

      // The folder's tokenizer, as AutoTokenizer (Rust) and Transformers.js (JS) read it.
      const folderTokenizer = await (await fetch(new URL(`api/checkpoints/${last.sha256}/tokenizer.json`, coordinator.url))).text()
      const folderConfig = await getJson<Record<string, unknown>>(coordinator.url, `api/checkpoints/${last.sha256}/tokenizer_config.json`)
      assert.equal(folderConfig.eos_token, '<|endoftext|>')
      const js = new JsTokenizer(JSON.parse(folderTokenizer) as object, folderConfig)
      const jsIds = js.encode(SAMPLE, { add_special_tokens: false }).ids
      assert.equal(js.decode(jsIds, { clean_up_tokenization_spaces: false }), SAMPLE)
      await writeFile(join(dir, 'tokenizer.json'), folderTokenizer)
      const rust = RustTokenizer.fromFile(join(dir, 'tokenizer.json'))
      const rustIds = (await rust.encode(SAMPLE, null, { addSpecialTokens: false })).getIds()
      assert.deepEqual(rustIds, jsIds)
      assert.equal(await rust.decode(rustIds, false), SAMPLE)

      // Which documents went into checkpoint 1, checked by hand against the accepted units.
      type Provenance = { round: number, source: string, units: Array<{ round: number, node: string, ranges: Array<{ shard: string, start: number, end: number }> }>, documents: Array<{ locator: string, trainedTokens: number, rounds: number[], nodes: string[] }>, heldOut: string[] }
      const p1 = await getJson<Provenance>(coordinator.url, `api/runs/${runId}/documents.json?round=1`)
      const p2 = await getJson<Provenance>(coordinator.url, `api/runs/${runId}/documents.json`)
      assert.equal(p1.round, 1)
      assert.equal(p2.round, 2)
      const ledger = await getJson<Array<{ round: number, outcome: string, tokens: number, peerId: string }>>(coordinator.url, `api/runs/${runId}/ledger.json`)
      assert.deepEqual(p2.units.map((u) => [u.round, u.node]), ledger.filter((r) => r.outcome === 'accepted').map((r) => [r.round, r.peerId]))
      assert.ok(p1.units.every((u) => u.round === 1) && p1.units.length >= 1)
      // Read the shards of round 1's units and the raw file: each listed document's text is
      // in the trained tokens, and no document outside the units is listed.
      const trained = new Set(p1.documents.map((d) => d.locator))
      assert.ok(trained.size > 3)
      assert.ok(p1.documents.every((d) => d.rounds.join() === '1' && d.nodes.join() === agent!.peerId && d.trainedTokens > 0))
      assert.ok(p2.documents.length > p1.documents.length, 'checkpoint 2 adds round 2\'s documents')
      const tokenized = p1.units.flatMap((u) => u.ranges).reduce((n, r) => n + r.end - r.start, 0)
      const docTokens = p1.documents.reduce((n, d) => n + d.trainedTokens, 0)
      // Units' tokens = the documents' trained tokens + one <|endoftext|> between documents.
      assert.ok(tokenized - docTokens >= 0 && tokenized - docTokens <= p1.documents.length + 1, `${tokenized} unit tokens vs ${docTokens} document tokens over ${p1.documents.length} documents`)
      const sourceText = (locator: string): string => {
        const n = Number(/\d+/.exec(locator)![0])
        return dataset === jsonl ? (JSON.parse(jsonlRows[n - 1]!) as { text: string }).text : content[n]!
      }
      // The shards' tokens of round 1's units, read from the coordinator's blob store: every
      // document listed whole is in that text.
      const tok = catalogTokenizer('gpt2-1k')
      const texts: string[] = []
      for (const r of p1.units.flatMap((u) => u.ranges)) {
        const shard = decodeShard(new Uint8Array(await readFile(join(coordinator.dataDir, 'blobs', r.shard.slice(0, 2), r.shard))))
        texts.push(tok.decode(Array.from(shard.tokens.subarray(r.start, r.end))))
      }
      const unitText = texts.join('')
      const whole = p1.documents.filter((d) => d.trainedTokens === catalogTokenizer('gpt2-1k').encode(sourceText(d.locator)).length)
      assert.ok(whole.length >= p1.documents.length - 2 * p1.units.length, 'only documents cut by a unit boundary are partly trained')
      for (const d of whole) assert.ok(unitText.includes(sourceText(d.locator)), `${d.locator} is in the trained text`)
      for (const held of p2.heldOut.slice(0, 20)) assert.ok(!trained.has(held), 'held-out documents are never trained')
      const card = await (await fetch(new URL(`api/checkpoints/${last.sha256}/README.md`, coordinator.url))).text()
      assert.match(card, new RegExp(`${p2.documents.length.toLocaleString('en-US')} documents were trained on up to this checkpoint`))
      assert.match(card, dataset === jsonl ? /`gpt2-1k` \(byte-level BPE\)/ : /an uploaded `tokenizer.json`/)
      const csv = await (await fetch(new URL(`api/runs/${runId}/documents.csv?round=1`, coordinator.url))).text()
      assert.equal(csv.trim().split('\n').length, p1.documents.length + 1)
    }
  })

  test('a tar archive of several JSONL files uploads as one dataset, each document named by its file', async () => {
    const parts = join(dir, 'parts')
    await mkdir(parts, { recursive: true })
    await writeFile(join(parts, 'part-1.jsonl'), lines.slice(0, 1500).map((text) => JSON.stringify({ text })).join('\n') + '\n')
    await writeFile(join(parts, 'part-2.jsonl'), [...lines.slice(1500, 1502).map((text) => JSON.stringify({ text })), '{"text": broken', ...lines.slice(1502, 3000).map((text) => JSON.stringify({ text }))].join('\n') + '\n')
    // The system's tar, as an organizer would make it.
    execFileSync('tar', ['-cf', join(dir, 'parts.tar'), '-C', parts, 'part-1.jsonl', 'part-2.jsonl'])
    const ready = await upload(join(dir, 'parts.tar'), { name: 'two parts', format: 'jsonl', field: 'text', tokenizer: 'gpt2-1k' })
    assert.equal(ready.status, 'ready', ready.error ?? '')
    assert.equal(ready.documents, 3000)
    assert.equal(ready.badRows, 1)
    assert.deepEqual(ready.badRowExamples.map((e) => e.locator), ['part-2.jsonl: line 3'])
  })

  test('hostile uploads are refused with a reason and change nothing; a file that is not what it claims fails with why', async () => {
    const bytes = new TextEncoder().encode('PAR1 not really parquet at all, just words')
    const created = await organizer.client.datasets.create.mutate({ name: 'fake', format: 'parquet', field: 'content', tokenizer: 'gpt2-1k', fileName: 'fake.parquet', fileBytes: bytes.length })
    const put = async (headers: Record<string, string>, body: Uint8Array | string = bytes, path = `api/datasets/${created.id}/file`): Promise<{ status: number, body: { code?: string, error?: string } }> => {
      const res = await fetch(new URL(path, coordinator.url), { method: 'PUT', headers, body: typeof body === 'string' ? body : Buffer.from(body) })
      return { status: res.status, body: await res.json() as { code?: string, error?: string } }
    }
    const range = `bytes 0-${bytes.length - 1}/${bytes.length}`
    assert.equal((await put({ 'content-range': range })).status, 401, 'no session')
    const funder = sessionClientWithCookie(coordinator.url)
    await funder.client.auth.signUp.mutate({ email: 'fay@funds.test', password: 'fay-password-1', displayName: 'Fay', role: 'funder' })
    assert.equal((await put({ cookie: funder.cookie(), 'content-range': range })).status, 403, 'not an organizer')
    const other = sessionClientWithCookie(coordinator.url)
    await other.client.auth.signUp.mutate({ email: 'bo@runs.test', password: 'bo-password-1', displayName: 'Bo', role: 'organizer' })
    assert.equal((await put({ cookie: other.cookie(), 'content-range': range })).status, 404, 'someone else\'s dataset')
    // Nor may another organizer train on it, while it uploads or after: to them it does not exist.
    await assert.rejects(other.client.runs.create.mutate({ spec: tinyRunSpec({ dataset: { source: 'dataset', id: created.id } }) }), new RegExp(`no dataset ${created.id} on this coordinator`))
    const me = { cookie: organizer.cookie() }
    assert.match((await put({ ...me })).body.error!, /Content-Range/)
    assert.equal((await put({ ...me, 'content-range': 'bytes 0-5/99' }, bytes.subarray(0, 6))).status, 400, 'a different file size')
    assert.equal((await put({ ...me, 'content-range': range, origin: 'https://evil.example' })).status, 403)
    assert.equal((await put({ ...me, 'content-range': `bytes 0-3/${bytes.length}` })).status, 400, 'more body than the range names')
    assert.equal((await organizer.client.datasets.get.query({ id: created.id })).receivedBytes, 0, 'nothing was kept')
    assert.equal((await put({ ...me, 'content-range': range }, bytes, 'api/datasets/not-a-uuid/file')).status, 405, 'no such upload path')
    const ok = await put({ ...me, 'content-range': range })
    assert.equal(ok.status, 200)
    assert.equal((await put({ ...me, 'content-range': range })).status, 409, 'a finished upload takes no more')
    const failed = await waitReady(created.id)
    assert.equal(failed.status, 'failed')
    assert.match(failed.error ?? '', /not a Parquet file/)
    await assert.rejects(organizer.client.runs.create.mutate({ spec: tinyRunSpec({ dataset: { source: 'dataset', id: created.id } }) }), /dataset "fake" is failed \(not a Parquet file/)
    await assert.rejects(other.client.runs.create.mutate({ spec: tinyRunSpec({ dataset: { source: 'dataset', id: created.id } }) }), new RegExp(`no dataset ${created.id} on this coordinator`))
    await assert.rejects(organizer.client.datasets.create.mutate({ name: 'x', format: 'jsonl', field: 'text', tokenizer: 'llama-9', fileName: 'x.jsonl', fileBytes: 10 }), /no tokenizer called "llama-9"/)
    // Announced uploads hold room in the dataset quota (4096 MiB here) until they finish.
    const huge = { name: 'huge', format: 'jsonl' as const, field: 'text', tokenizer: 'gpt2', fileName: 'huge.jsonl' }
    await assert.rejects(organizer.client.datasets.create.mutate({ ...huge, fileBytes: 5 * 1024 ** 3 }), /the file is 5120\.0 MiB, and the coordinator's dataset quota \(4096 MiB, --dataset-quota-mb\) has \d+\.\d MiB left/)
    await organizer.client.datasets.create.mutate({ ...huge, fileBytes: 3 * 1024 ** 3 })
    await assert.rejects(organizer.client.datasets.create.mutate({ ...huge, fileBytes: 1024 ** 3 }), /uploads in progress \(3072\.0 MiB\)/)
    await assert.rejects(organizer.client.datasets.create.mutate({ name: 'x', format: 'jsonl', field: null, tokenizer: 'gpt2', fileName: 'x.jsonl', fileBytes: 10 }), /which field holds the text/)
  })
})

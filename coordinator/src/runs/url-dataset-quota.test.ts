// What the coordinator fetches and keeps for an organizer's URL dataset (its validation shard and
// document index) is stored data like an upload, and counts against the same dataset quota and
// the organizer's share of it (--user-dataset-quota-mb).
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { UPLOAD_BUILD_DEFAULTS, buildDataset, catalogTokenizer, openReader } from '@barnraise/datasets'
import { openDatabase } from '../db/open-database.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { uploadedDataBytes } from '../datasets/data-storage.ts'
import { DEFAULT_INSTALL_LIMITS } from './install-limits.ts'
import { RunSpecError, createRun } from './runs.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** `files` served over HTTP on loopback, an in-memory coordinator database and blob store, and an organizer in it. */
async function serveAndOpen (files: Map<string, Uint8Array>, dir: string) {
  const server = createServer((req, res) => {
    const bytes = files.get(req.url ?? '')
    if (bytes === undefined) { res.writeHead(404); res.end(); return }
    res.end(bytes)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  const store = { db, blobs: new DiskBlobStore(join(dir, 'blobs')) }
  const organizer = (await db.insertInto('users').values({ email: 'o@x.test', display_name: 'O', password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
  return { server, base, database, db, store, organizer }
}

test('a URL dataset\'s validation shard and document index count against the dataset quota and the organizer\'s share: refused with the figures when they do not fit, stored as the organizer\'s when they do, and not counted twice', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-url-quota-'))
  // Lines of made-up words: enough for a few shards of gpt2-1k tokens.
  const words = ['barn', 'raise', 'seed', 'grain', 'field', 'plough', 'harvest', 'rain', 'sun', 'oak']
  const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ text: Array.from({ length: 12 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ') }))
  await writeFile(join(dir, 'fields.jsonl'), lines.join('\n'))
  const files = new Map<string, Uint8Array>()
  const built = await buildDataset({ reader: await openReader(join(dir, 'fields.jsonl'), 'jsonl', 'text'), tokenizer: catalogTokenizer('gpt2-1k'), source: 'fields.jsonl', ...UPLOAD_BUILD_DEFAULTS, shardTokens: 8_000, onShard: async (bytes, m) => { files.set(`/${m.sha256}`, bytes) } })
  const index = Buffer.from(JSON.stringify(built.index))
  files.set('/documents.json', index)
  const { server, base, database, db, store, organizer } = await serveAndOpen(files, dir)
  try {
    const spec = {
      name: 'from urls',
      model: { preset: 'tiny' },
      dataset: {
        source: 'urls',
        tokenizer: 'gpt2-1k',
        train: built.train.map((s) => ({ url: `${base}/${s.sha256}`, sha256: s.sha256, tokens: s.tokens })),
        validation: { url: `${base}/${built.validation.sha256}`, sha256: built.validation.sha256 },
        documents: { url: `${base}/documents.json`, sha256: sha(index) }
      },
      recipe: { innerSteps: 4, batchSize: 2, seqLen: 32, innerLr: 0.003, warmupSteps: 1 },
      rounds: 2
    }
    const validationBytes = files.get(`/${built.validation.sha256}`)!.byteLength
    // Room for the validation shard alone, not for the index as well.
    const tight = { ...DEFAULT_INSTALL_LIMITS, allowPrivateShardUrls: true, datasetQuotaBytes: validationBytes + 10 }
    const refused = await createRun(store, spec, organizer, tight).then(() => undefined, (e: unknown) => e)
    assert.ok(refused instanceof RunSpecError, String(refused))
    assert.equal(refused.fields[0]!.field, 'dataset')
    assert.match(refused.fields[0]!.message, /validation shard and document index takes [\d.]+ KiB, and the coordinator's dataset quota \([\d.]+ KiB, --dataset-quota-mb\) has [\d.]+ KiB left after stored data \(0\.0 MiB\) and uploads in progress \(0\.0 MiB\); ask the operator for room/)
    assert.equal((await db.selectFrom('blobs').select('sha256').where('kind', 'in', ['shard', 'documents']).execute()).length, 0, 'a refused dataset stores nothing')

    const roomy = { ...tight, datasetQuotaBytes: 64 * 1024 * 1024 }
    // Room in the install, but not in the organizer's share of it.
    const share = await createRun(store, spec, organizer, { ...roomy, userDatasetQuotaBytes: validationBytes + 10 }).then(() => undefined, (e: unknown) => e)
    assert.ok(share instanceof RunSpecError, String(share))
    assert.match(share.fields[0]!.message, /validation shard and document index takes [\d.]+ KiB, and your share of the dataset quota \([\d.]+ KiB an account, --user-dataset-quota-mb\) has [\d.]+ KiB left after your stored data \(0\.0 MiB\)/)
    assert.equal((await db.selectFrom('blobs').select('sha256').where('kind', 'in', ['shard', 'documents']).execute()).length, 0, 'a dataset refused for the share stores nothing')

    const { spec: resolved } = await createRun(store, spec, organizer, roomy)
    const stored = await db.selectFrom('blobs').select(['sha256', 'size', 'kind', 'meta']).where('kind', 'in', ['shard', 'documents']).execute()
    assert.deepEqual(stored.map((b) => b.kind).sort(), ['documents', 'shard'])
    for (const b of stored) assert.equal(b.meta.uploadedBy, organizer, `${b.kind} is stored as the organizer's`)
    assert.equal(resolved.documentIndex, stored.find((b) => b.kind === 'documents')!.sha256)
    const used = await uploadedDataBytes(db)
    assert.equal(used, stored.reduce((n, b) => n + b.size, 0))

    // The same files again take no more room: a quota exactly full still has room for them.
    await createRun(store, { ...spec, name: 'again' }, organizer, { ...roomy, datasetQuotaBytes: used })
    assert.equal(await uploadedDataBytes(db), used)
  } finally {
    await database.close()
    server.close()
  }
})

test('two runs created at once cannot both take the last room in the dataset quota: one is stored, the other refused with the figures', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-url-quota-race-'))
  const files = new Map<string, Uint8Array>()
  const datasets: Array<Awaited<ReturnType<typeof buildDataset>>> = []
  for (const [n, words] of [['a', ['barn', 'raise', 'seed', 'grain']], ['b', ['field', 'plough', 'harvest', 'rain']]] as const) {
    const lines = Array.from({ length: 1500 }, (_, i) => JSON.stringify({ text: Array.from({ length: 12 }, (_, j) => words[(i * 3 + j) % words.length]).join(' ') }))
    await writeFile(join(dir, `${n}.jsonl`), lines.join('\n'))
    datasets.push(await buildDataset({ reader: await openReader(join(dir, `${n}.jsonl`), 'jsonl', 'text'), tokenizer: catalogTokenizer('gpt2-1k'), source: `${n}.jsonl`, ...UPLOAD_BUILD_DEFAULTS, shardTokens: 8_000, onShard: async (bytes, m) => { files.set(`/${m.sha256}`, bytes) } }))
  }
  const { server, base, database, db, store, organizer } = await serveAndOpen(files, dir)
  try {
    const spec = (built: typeof datasets[number], name: string) => ({
      name,
      model: { preset: 'tiny' },
      dataset: {
        source: 'urls',
        tokenizer: 'gpt2-1k',
        train: built.train.map((s) => ({ url: `${base}/${s.sha256}`, sha256: s.sha256, tokens: s.tokens })),
        validation: { url: `${base}/${built.validation.sha256}`, sha256: built.validation.sha256 }
      },
      recipe: { innerSteps: 4, batchSize: 2, seqLen: 32, innerLr: 0.003, warmupSteps: 1 },
      rounds: 2
    })
    const sizes = datasets.map((d) => files.get(`/${d.validation.sha256}`)!.byteLength)
    assert.notEqual(datasets[0]!.validation.sha256, datasets[1]!.validation.sha256)
    // Room for the larger of the two validation shards, not for both.
    const limits = { ...DEFAULT_INSTALL_LIMITS, allowPrivateShardUrls: true, datasetQuotaBytes: Math.max(...sizes) + 10 }
    const outcomes = await Promise.allSettled([createRun(store, spec(datasets[0]!, 'first'), organizer, limits), createRun(store, spec(datasets[1]!, 'second'), organizer, limits)])
    assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected'])
    const refused = (outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason as unknown
    assert.ok(refused instanceof RunSpecError, String(refused))
    assert.match(refused.fields[0]!.message, /validation shard takes [\d.]+ KiB, and the coordinator's dataset quota \([\d.]+ KiB, --dataset-quota-mb\) has [\d.]+ KiB left after stored data \([\d.]+ KiB\)/)
    assert.equal((await db.selectFrom('blobs').select('sha256').where('kind', '=', 'shard').execute()).length, 1, 'one validation shard is stored')
    assert.ok(await uploadedDataBytes(db) <= limits.datasetQuotaBytes)
  } finally {
    await database.close()
    server.close()
  }
})

test('a URL dataset\'s validation shard is hashed once: the store takes the sha256 its check computed; bytes without the manifest\'s sha256 are refused with nothing stored', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-url-validation-'))
  const words = ['barn', 'raise', 'seed', 'grain', 'field', 'plough']
  const lines = Array.from({ length: 1500 }, (_, i) => JSON.stringify({ text: Array.from({ length: 12 }, (_, j) => words[(i * 5 + j) % words.length]).join(' ') }))
  await writeFile(join(dir, 'v.jsonl'), lines.join('\n'))
  const files = new Map<string, Uint8Array>()
  const built = await buildDataset({ reader: await openReader(join(dir, 'v.jsonl'), 'jsonl', 'text'), tokenizer: catalogTokenizer('gpt2-1k'), source: 'v.jsonl', ...UPLOAD_BUILD_DEFAULTS, shardTokens: 8_000, onShard: async (bytes, m) => { files.set(`/${m.sha256}`, bytes) } })
  const { server, base, database, db, store, organizer } = await serveAndOpen(files, dir)
  // What the store is handed for bytes in memory: the sha256 it is given saves it hashing them again.
  const puts: Array<{ sha256: string | undefined, size: number }> = []
  const put = store.blobs.put.bind(store.blobs)
  store.blobs.put = async (bytes, sha256) => {
    if (bytes instanceof Uint8Array) puts.push({ sha256, size: bytes.byteLength })
    return await put(bytes, sha256)
  }
  try {
    const spec = (validation: { url: string, sha256: string }) => ({
      name: 'from urls',
      model: { preset: 'tiny' },
      dataset: { source: 'urls', tokenizer: 'gpt2-1k', train: built.train.map((s) => ({ url: `${base}/${s.sha256}`, sha256: s.sha256, tokens: s.tokens })), validation },
      recipe: { innerSteps: 4, batchSize: 2, seqLen: 32, innerLr: 0.003, warmupSteps: 1 },
      rounds: 2
    })
    const limits = { ...DEFAULT_INSTALL_LIMITS, allowPrivateShardUrls: true, datasetQuotaBytes: 64 * 1024 * 1024 }
    // A token shard, but not the one the manifest names.
    const wrongUrl = `${base}/${built.train[0]!.sha256}`
    const refused = await createRun(store, spec({ url: wrongUrl, sha256: built.validation.sha256 }), organizer, limits).then(() => undefined, (e: unknown) => e)
    assert.ok(refused instanceof RunSpecError, String(refused))
    assert.equal(refused.fields[0]!.message, `the validation shard at ${wrongUrl} does not have the sha256 the manifest gives`)
    assert.deepEqual(puts, [], 'nothing is stored')
    assert.equal((await db.selectFrom('blobs').select('sha256').where('kind', '=', 'shard').execute()).length, 0)

    const validation = files.get(`/${built.validation.sha256}`)!
    const { spec: resolved } = await createRun(store, spec({ url: `${base}/${built.validation.sha256}`, sha256: built.validation.sha256 }), organizer, limits)
    assert.equal(resolved.validationShard.sha256, built.validation.sha256)
    assert.deepEqual(puts, [{ sha256: built.validation.sha256, size: validation.byteLength }], 'the store was given the checked sha256 with the shard')
    assert.equal(sha(await store.blobs.get(built.validation.sha256)), built.validation.sha256, 'and holds the shard under it')
  } finally {
    await database.close()
    server.close()
  }
})

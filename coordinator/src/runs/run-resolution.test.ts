// A spec naming stored shards is resolved with one query per thousand hashes, not one query
// per hash all at once (which held the whole database pool while it ran).
import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import { openDatabase } from '../db/open-database.ts'
import type { Database } from '../db/schema.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import type { BlobBytes, BlobStore } from '../blobs/blob-store.ts'
import { initialCheckpoint, presetConfig } from '@barnraise/trainer'
import { ReadCounter } from '../../../test/support/read-counts.ts'
import { SHARD_LOOKUP_CHUNK, resolveDataset, storeInitialCheckpoint } from './run-resolution.ts'

let db: Kysely<Database>
let blobs: DiskBlobStore
let blobRoot: string
let close: () => Promise<void>

beforeAll(async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  db = database.db
  close = database.close
  blobRoot = join(await mkdtemp(join(tmpdir(), 'barnraise-resolution-')), 'blobs')
  blobs = new DiskBlobStore(blobRoot)
})
afterAll(async () => { await close() })

/** `n` shard rows (the lookup reads only their rows), each with its own token count. */
async function shardRows (n: number): Promise<string[]> {
  const hashes = Array.from({ length: n }, () => randomBytes(32).toString('hex'))
  for (let i = 0; i < n; i += 1000) {
    await db.insertInto('blobs').values(hashes.slice(i, i + 1000).map((sha256, j) => ({ sha256, size: 1, kind: 'shard' as const, meta: JSON.stringify({ tokens: 100 + i + j, vocabSize: 256 }) }))).execute()
  }
  return hashes
}

test('a spec\'s train and validation shards are looked up in one query, in the order the spec names them', async () => {
  const [validation, ...train] = await shardRows(31)
  const counter = new ReadCounter()
  const dataset = await resolveDataset({ db: db.withPlugin(counter.plugin), blobs }, { source: 'shards', train: train.reverse(), validation: validation! })
  assert.equal(counter.queries, 1)
  assert.deepEqual(dataset.train.map((s) => s.sha256), train)
  assert.deepEqual([dataset.validation.sha256, dataset.validation.tokens], [validation, 100])
  assert.equal(dataset.vocabSize, 256)
})

test(`thousands of hashes take one query per ${SHARD_LOOKUP_CHUNK}`, async () => {
  const [validation, ...train] = await shardRows(2 * SHARD_LOOKUP_CHUNK + 500)
  const counter = new ReadCounter()
  const dataset = await resolveDataset({ db: db.withPlugin(counter.plugin), blobs }, { source: 'shards', train, validation: validation! })
  assert.equal(counter.queries, 3)
  assert.equal(dataset.train.length, train.length)
  assert.deepEqual([dataset.train.at(-1)!.sha256, dataset.train.at(-1)!.tokens], [train.at(-1), 100 + train.length])
})

test('a hash not stored is refused by name, as before', async () => {
  const [validation, ...train] = await shardRows(3)
  const missing = 'ab'.repeat(32)
  await assert.rejects(resolveDataset({ db, blobs }, { source: 'shards', train: [...train, missing], validation: validation! }), new RegExp(`shard ${missing} is not in this coordinator's blob store`))
})

/** Every file under the blob store's folder (blobs sit one folder down, temp files at the top). */
async function filesIn (root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name)
}

test('the initial checkpoint is stored as it is made, with the bytes and sha256 agents make from the seed', async () => {
  const config = { ...presetConfig('tiny'), tie_word_embeddings: false }
  const whole = await initialCheckpoint(config, 41)
  const sha = await storeInitialCheckpoint({ db, blobs }, config, 41)
  assert.equal(sha, whole.sha256)
  assert.ok(Buffer.from(await blobs.get(sha)).equals(whole.bytes))
  const row = await db.selectFrom('blobs').select(['size', 'kind']).where('sha256', '=', sha).executeTakeFirstOrThrow()
  assert.deepEqual(row, { size: whole.bytes.byteLength, kind: 'checkpoint' })
})

test('an initial checkpoint aborted while it is written leaves no temp file and no blob', async () => {
  const controller = new AbortController()
  let chunks = 0
  // The real store, aborted once it has written the header: the worker is then making weights.
  const store: BlobStore = {
    put: async (bytes: BlobBytes) => await blobs.put((async function * () {
      for await (const chunk of bytes as AsyncIterable<Uint8Array>) {
        yield chunk
        if (++chunks === 1) controller.abort(new Error('run creation cancelled'))
      }
    })()),
    get: blobs.get.bind(blobs), size: blobs.size.bind(blobs), createReadStream: blobs.createReadStream.bind(blobs), delete: blobs.delete.bind(blobs)
  }
  const before = await filesIn(blobRoot).catch(() => [])
  const rows = await db.selectFrom('blobs').select('sha256').where('kind', '=', 'checkpoint').execute()
  await assert.rejects(storeInitialCheckpoint({ db, blobs: store }, presetConfig('tiny'), 42, controller.signal), /run creation cancelled/)
  assert.equal(chunks, 1)
  assert.deepEqual(await filesIn(blobRoot), before)
  assert.deepEqual(await db.selectFrom('blobs').select('sha256').where('kind', '=', 'checkpoint').execute(), rows)
})

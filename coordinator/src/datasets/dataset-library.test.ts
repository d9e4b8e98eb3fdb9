// An announced upload holds room in the dataset quota only while it moves: one that stalls (no
// piece for an hour, or far behind a modest pace) holds just the bytes it received, so nobody can
// announce the whole quota, send nothing, and keep every other organizer out; it takes its room
// again with its next piece, if the room is still there. And one account takes at most its share
// (--user-dataset-quota-mb). Real PGlite, a real blob store, the real tokenizing worker.
import { afterEach, test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import type { Kysely } from 'kysely'
import { createTestDatabase } from '../../../test/support/postgres.ts'
import { openDatabase } from '../db/open-database.ts'
import type { Database } from '../db/schema.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { ChangeFeed } from '../events/change-feed.ts'
import { createLogger } from '../log.ts'
import { CoordinatorError } from '../errors.ts'
import { DatasetLibrary } from './dataset-library.ts'
import type { NewDataset } from './dataset-library.ts'
import { UPLOAD_HOLD_MS, stagedUploadBytes, uploadedDataBytes } from './data-storage.ts'
import type { DataQuota } from './data-storage.ts'
import { storeUploadedTokenizer } from './run-tokenizers.ts'

const KIB = 1024
const MIB = 1024 * 1024
const HOUR = 3600_000

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A library on a throwaway database (PGlite, or a fresh one on the test Postgres) with the given quota, and two organizers in it. */
async function open (quota: DataQuota, kind: 'pglite' | 'postgres' = 'pglite') {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-dataset-library-'))
  const fresh = kind === 'postgres' ? await createTestDatabase() : undefined
  const database = await openDatabase({ dataDir: 'memory://', databaseUrl: fresh?.url })
  const db = database.db
  const blobs = new DiskBlobStore(join(dir, 'blobs'))
  const stagingDir = join(dir, 'uploads')
  const library = new DatasetLibrary({ db, blobs, log: createLogger('dataset-library-test'), changes: new ChangeFeed(), stagingDir, quota })
  cleanups.push(async () => {
    await library.stop()
    await database.close()
    await fresh?.drop()
    await rm(dir, { recursive: true, force: true })
  })
  const user = async (email: string): Promise<string> => (await db.insertInto('users').values({ email, display_name: email, password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
  return { db, blobs, library, stagingDir, mallory: await user('mallory@quota.test'), alice: await user('alice@quota.test') }
}

const file = (fileBytes: number, name = 'corpus'): NewDataset => ({ name, format: 'jsonl', field: 'text', tokenizer: 'byte', fileName: `${name}.jsonl`, fileBytes })

/** Sends `bytes` as the piece of dataset `id` starting at `start`. */
async function put (library: DatasetLibrary, id: string, userId: string, bytes: Uint8Array, start: number, total: number) {
  return await library.append(id, userId, { start, length: bytes.byteLength, total }, Readable.from([Buffer.from(bytes)]))
}

/** The refusal `call` ends in, which must be a quota refusal. */
async function quotaRefusal (call: Promise<unknown>): Promise<string> {
  const err = await call.then(() => undefined, (e: unknown) => e)
  assert.ok(err instanceof CoordinatorError, `expected a quota refusal, got ${String(err)}`)
  assert.equal(err.code, 'ERR_QUOTA_EXCEEDED', err.message)
  return err.message
}

/** Moves a dataset's clock back: announced `createdAgo` ms ago, its last piece `touchedAgo` ms ago. */
async function age (db: Kysely<Database>, id: string, createdAgo: number, touchedAgo: number): Promise<void> {
  const now = Date.now()
  await db.updateTable('datasets').set({ created_at: new Date(now - createdAgo), updated_at: new Date(now - touchedAgo) }).where('id', '=', id).execute()
}

async function row (db: Kysely<Database>, id: string) {
  return await db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}

for (const kind of ['pglite', 'postgres'] as const) {
  test(`${kind}: an upload that announced the whole quota and stalled holds only what it received: another organizer's upload fits, and the stalled one resumes only when room is back`, async () => {
    const { db, library, stagingDir, mallory, alice } = await open({ datasetQuotaBytes: 8 * MIB }, kind)
    const hostage = await library.create(file(8 * MIB, 'hostage'), mallory)
    // 4 MiB buy it a minute past the first hour at the pace: only the pause below stalls it.
    await put(library, hostage.id, mallory, new Uint8Array(4 * MIB).fill(97), 0, 8 * MIB)
    // While it moves, it holds its whole file: that is what lets a real upload finish for sure.
    const early = await quotaRefusal(library.create(file(10 * KIB), alice))
    assert.match(early, /the file is 10\.0 KiB, and the coordinator's dataset quota \(8 MiB, --dataset-quota-mb\) has 0\.0 MiB left after stored data \(0\.0 MiB\) and uploads in progress \(8\.0 MiB\); ask the operator for room/)

    // No piece for longer than the hold: it holds its 4 MiB received, and the rest is free.
    await age(db, hostage.id, UPLOAD_HOLD_MS + 30_000, UPLOAD_HOLD_MS + 30_000)
    assert.equal(await stagedUploadBytes(db), 4 * MIB)
    const theirs = await library.create(file(4 * MIB, 'theirs'), alice)
    assert.equal(await stagedUploadBytes(db), 8 * MIB)

    // Resuming finds its room taken: refused with what is left and what to do, and nothing moves.
    const before = await row(db, hostage.id)
    const refused = await quotaRefusal(put(library, hostage.id, mallory, new Uint8Array(100).fill(98), 4 * MIB, 8 * MIB))
    assert.equal(refused, 'this upload stalled (no piece for 1 hour, or under 64 KiB/s on average), so it held only the 4.0 MiB it has received, and the rest of its file is 4.0 MiB, ' +
      'and the coordinator\'s dataset quota (8 MiB, --dataset-quota-mb) has 0.0 MiB left after stored data (0.0 MiB) and uploads in progress (8.0 MiB); ' +
      'the upload stays at byte 4194304 for 24 hours after its last piece: resume it later, once other uploads have finished or failed, or ask the operator for room')
    const after = await row(db, hostage.id)
    assert.equal(after.received_bytes, 4 * MIB)
    assert.equal(after.updated_at.getTime(), before.updated_at.getTime(), 'a refused piece does not refresh the upload')
    assert.equal((await stat(join(stagingDir, hostage.id))).size, 4 * MIB, 'nothing of the refused piece was kept')
    assert.equal(await stagedUploadBytes(db), 8 * MIB)

    // The other upload stalls in turn (it sent nothing): the first resumes and holds its whole file again.
    await age(db, theirs.id, UPLOAD_HOLD_MS + 30_000, UPLOAD_HOLD_MS + 30_000)
    const resumed = await put(library, hostage.id, mallory, new Uint8Array(100).fill(98), 4 * MIB, 8 * MIB)
    assert.equal(resumed.receivedBytes, 4 * MIB + 100)
    assert.equal(await stagedUploadBytes(db), 8 * MIB, 'the resumed upload holds its whole file, the stalled one nothing')
    const theirsRefused = await quotaRefusal(put(library, theirs.id, alice, new Uint8Array(10).fill(99), 0, 4 * MIB))
    assert.match(theirsRefused, /the rest of its file is 4\.0 MiB, .* has 0\.0 MiB left/)
    assert.equal((await row(db, theirs.id)).received_bytes, 0)
  })
}

test('a piece that comes in while its upload stalls (its room went to others meanwhile) is refused at its end and cut off again, not counted on top', async () => {
  const { db, library, stagingDir, mallory, alice } = await open({ datasetQuotaBytes: 8 * MIB })
  const slow = await library.create(file(8 * MIB, 'slow'), mallory)
  await put(library, slow.id, mallory, new Uint8Array(4 * MIB), 0, 8 * MIB)
  const body = new PassThrough()
  const piece = library.append(slow.id, mallory, { start: 4 * MIB, length: 200, total: 8 * MIB }, body).then(() => undefined, (e: unknown) => e)
  body.write(Buffer.alloc(100))
  // The piece is being written (its first half is on disk) when the upload passes its hold.
  for (let i = 0; i < 200 && (await stat(join(stagingDir, slow.id))).size < 4 * MIB + 100; i++) await new Promise((r) => setTimeout(r, 25))
  await age(db, slow.id, UPLOAD_HOLD_MS + 30_000, UPLOAD_HOLD_MS + 30_000)
  await library.create(file(4 * MIB, 'theirs'), alice)
  body.end(Buffer.alloc(100))
  const err = await piece
  assert.ok(err instanceof CoordinatorError && err.code === 'ERR_QUOTA_EXCEEDED', String(err))
  assert.match(err.message, /this upload stalled while its piece came in, and the rest of its file is 4\.0 MiB, and the coordinator's dataset quota \(8 MiB, --dataset-quota-mb\) has 0\.0 MiB left/)
  assert.equal((await row(db, slow.id)).received_bytes, 4 * MIB)
  assert.equal((await stat(join(stagingDir, slow.id))).size, 4 * MIB)
  assert.equal(await stagedUploadBytes(db), 8 * MIB, 'its 4 MiB and theirs, nothing over')
})

test('a byte now and then does not keep the room: an upload far behind the pace since it was announced holds only what it received', async () => {
  const { db, library, mallory, alice } = await open({ datasetQuotaBytes: MIB })
  const trickle = await library.create(file(MIB, 'trickle'), mallory)
  await put(library, trickle.id, mallory, new Uint8Array(10).fill(97), 0, MIB)
  // Announced three hours ago, a piece a minute ago: ten bytes do not buy three hours.
  await age(db, trickle.id, 3 * HOUR, 60_000)
  assert.equal(await stagedUploadBytes(db), 10)
  await library.create(file(MIB - 10, 'theirs'), alice)
  // Its next piece finds the room gone.
  const refused = await quotaRefusal(put(library, trickle.id, mallory, new Uint8Array(10).fill(97), 10, MIB))
  assert.match(refused, /the upload stays at byte 10 for 24 hours/)
})

for (const kind of ['pglite', 'postgres'] as const) {
  test(`${kind}: one account takes at most its share (--user-dataset-quota-mb): on announcing, on resuming, for a tokenizer; the others keep theirs`, async () => {
    const { db, blobs, library, mallory, alice } = await open({ datasetQuotaBytes: MIB, userDatasetQuotaBytes: 512 * KIB }, kind)
    const whole = await quotaRefusal(library.create(file(600 * KIB), mallory))
    assert.match(whole, /the file is 600\.0 KiB, and your share of the dataset quota \(512\.0 KiB an account, --user-dataset-quota-mb\) has 512\.0 KiB left after your stored data \(0\.0 MiB\) and your uploads in progress \(0\.0 MiB\); ask the operator for room/)
    const first = await library.create(file(400 * KIB, 'first'), mallory)
    const second = await quotaRefusal(library.create(file(200 * KIB, 'second'), mallory))
    assert.match(second, /your share .* has 112\.0 KiB left after your stored data \(0\.0 MiB\) and your uploads in progress \(400\.0 KiB\)/)
    // Stored data counts for whoever stored it.
    await db.insertInto('blobs').values({ sha256: 'b'.repeat(64), size: 100 * KIB, kind: 'shard', meta: JSON.stringify({ uploadedBy: mallory }) }).execute()
    assert.equal(await uploadedDataBytes(db, mallory), 100 * KIB)
    assert.equal(await uploadedDataBytes(db, alice), 0)
    await quotaRefusal(library.create(file(50 * KIB, 'small'), mallory))
    // Another organizer has their own share, up to what the install has left.
    await library.create(file(500 * KIB, 'hers'), alice)
    const installFull = await quotaRefusal(library.create(file(12 * KIB + 1, 'more'), alice))
    assert.match(installFull, /your share of the dataset quota .* has 12\.0 KiB left/)

    // A stalled upload's share goes to the account's new upload; the stalled one resumes only within the share.
    await age(db, first.id, UPLOAD_HOLD_MS + 60_000, UPLOAD_HOLD_MS + 60_000)
    await library.create(file(300 * KIB, 'third'), mallory)
    const resumed = await quotaRefusal(put(library, first.id, mallory, new Uint8Array(10), 0, 400 * KIB))
    assert.match(resumed, /your share of the dataset quota \(512\.0 KiB an account, --user-dataset-quota-mb\) has 112\.0 KiB left after your stored data \(100\.0 KiB\) and your uploads in progress \(300\.0 KiB\); the upload stays at byte 0/)
    assert.equal((await row(db, first.id)).received_bytes, 0)

    // A tokenizer.json is stored data of its uploader too, refused before it is read.
    const tokenizer = await quotaRefusal(storeUploadedTokenizer({ db, blobs }, new Uint8Array(200 * KIB), mallory, { datasetQuotaBytes: MIB, userDatasetQuotaBytes: 512 * KIB }))
    assert.match(tokenizer, /this tokenizer is 200\.0 KiB, and your share of the dataset quota \(512\.0 KiB an account, --user-dataset-quota-mb\)/)
  })
}

/** `n` JSON lines of made-up text: enough documents to train on and hold some out. */
function jsonl (n: number): Uint8Array {
  const words = ['barn', 'raise', 'seed', 'grain', 'field', 'plough', 'harvest', 'rain', 'sun', 'oak']
  return Buffer.from(Array.from({ length: n }, (_, i) => JSON.stringify({ text: Array.from({ length: 10 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ') })).join('\n') + '\n')
}

test('a normal upload still goes through: announced, sent in pieces, tokenized and stored as its uploader\'s, its held room handed over to its shards', async () => {
  const { db, library, stagingDir, alice, mallory } = await open({ datasetQuotaBytes: 4 * MIB, userDatasetQuotaBytes: 2 * MIB })
  const bytes = jsonl(400)
  const created = await library.create(file(bytes.byteLength), alice)
  assert.equal(await stagedUploadBytes(db), bytes.byteLength)
  const half = Math.floor(bytes.byteLength / 2)
  assert.equal((await put(library, created.id, alice, bytes.subarray(0, half), 0, bytes.byteLength)).receivedBytes, half)
  const last = await put(library, created.id, alice, bytes.subarray(half), half, bytes.byteLength)
  assert.equal(last.status, 'tokenizing')
  await library.idle()
  const ready = await library.get(created.id, { id: alice, admin: false })
  assert.equal(ready.status, 'ready', ready.error ?? '')
  assert.ok(ready.shards > 0)
  assert.equal(await stagedUploadBytes(db), 0, 'a finished upload holds no room')
  const stored = await db.selectFrom('blobs').select('size').where('kind', 'in', ['shard', 'documents']).execute()
  assert.ok(stored.length >= 2)
  assert.equal(await uploadedDataBytes(db, alice), stored.reduce((n, b) => n + b.size, 0), 'its shards and index count as its uploader\'s')
  assert.equal(await uploadedDataBytes(db, mallory), 0)
  await assert.rejects(stat(join(stagingDir, created.id)), /ENOENT/, 'the staged file is gone')
})

test('shards that no longer fit the uploader\'s share (the operator lowered it meanwhile) fail the dataset with the reason, and store nothing', async () => {
  const bytes = jsonl(400)
  const quota = { datasetQuotaBytes: 4 * MIB, userDatasetQuotaBytes: 2 * MIB }
  const { db, library, alice } = await open(quota)
  const created = await library.create(file(bytes.byteLength), alice)
  // As after a restart with a lower --user-dataset-quota-mb: the held room is gone, and stored data is checked again.
  quota.userDatasetQuotaBytes = 1024
  await put(library, created.id, alice, bytes, 0, bytes.byteLength)
  await library.idle()
  const failed = await library.get(created.id, { id: alice, admin: false })
  assert.equal(failed.status, 'failed')
  assert.match(failed.error ?? '', /this dataset makes [\d.]+ KiB of shards and index, and your share of the dataset quota \(1\.0 KiB an account, --user-dataset-quota-mb\) has 1\.0 KiB left/)
  assert.equal((await db.selectFrom('blobs').select('sha256').where('kind', 'in', ['shard', 'documents']).execute()).length, 0)
  assert.equal(await stagedUploadBytes(db), 0, 'a failed upload holds nothing')
})

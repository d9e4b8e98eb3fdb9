// An announced upload holds room in the dataset quota only while it moves: one that stalls (no
// piece for an hour, or far behind a modest pace) holds just the bytes it received for others, so
// nobody can announce the whole quota, send nothing, and keep every other organizer out; nor
// announce it again each hour, as the uploader's own stalled uploads count whole for them. One
// that only paused takes its room again with its next piece, if the room is still there; a slow
// one carries on piece by piece, each piece needing room. And one account takes at most its share
// (--user-dataset-quota-mb). Real PGlite, a real blob store, the real tokenizing worker.
import { afterEach, test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import type { Kysely } from 'kysely'
import { createTestDatabase } from '../../../test/support/postgres.ts'
import { openDatabase } from '../db/open-database.ts'
import type { Database } from '../db/schema.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { ChangeFeed } from '../events/change-feed.ts'
import type { ChangeTopic } from '../events/change-feed.ts'
import { createLogger } from '../log.ts'
import { CoordinatorError } from '../errors.ts'
import { DatasetLibrary } from './dataset-library.ts'
import type { NewDataset } from './dataset-library.ts'
import { UPLOAD_FIRST_STRETCH_MS, UPLOAD_HOLD_MS, reserveDataRoom, stagedUploadBytes, uploadedDataBytes } from './data-storage.ts'
import type { DataQuota } from './data-storage.ts'
import { storeUploadedTokenizer } from './run-tokenizers.ts'
import { zstdParquet } from '../../../datasets/src/readers/crafted-parquet.ts'

const KIB = 1024
const MIB = 1024 * 1024
const HOUR = 3600_000

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A library on a throwaway database (PGlite, or a fresh one on the test Postgres) with the given quota, and two organizers in it. */
async function open (quota: DataQuota, kind: 'pglite' | 'postgres' = 'pglite', changes = new ChangeFeed()) {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-dataset-library-'))
  const fresh = kind === 'postgres' ? await createTestDatabase() : undefined
  const database = await openDatabase({ dataDir: 'memory://', databaseUrl: fresh?.url })
  const db = database.db
  const blobs = new DiskBlobStore(join(dir, 'blobs'))
  const stagingDir = join(dir, 'uploads')
  const library = new DatasetLibrary({ db, blobs, log: createLogger('dataset-library-test'), changes, stagingDir, quota })
  cleanups.push(async () => {
    await library.stop()
    await database.close()
    await fresh?.drop()
    await rm(dir, { recursive: true, force: true })
  })
  const user = async (email: string): Promise<string> => (await db.insertInto('users').values({ email, display_name: email, password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
  return { db, blobs, library, stagingDir, user, mallory: await user('mallory@quota.test'), alice: await user('alice@quota.test') }
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

/** Backdates an upload's last piece alone, as if it had paused that long just after the first stretch. */
async function pause (db: Kysely<Database>, id: string, touchedAgo: number): Promise<void> {
  const now = Date.now()
  await db.updateTable('datasets').set({ created_at: new Date(now - UPLOAD_FIRST_STRETCH_MS - 30_000), updated_at: new Date(now - touchedAgo) }).where('id', '=', id).execute()
}

async function row (db: Kysely<Database>, id: string) {
  return await db.selectFrom('datasets').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
}

for (const kind of ['pglite', 'postgres'] as const) {
  test(`${kind}: an upload that announced the whole quota and stalled holds only what it received: another organizer's upload fits, and the stalled one resumes only when room is back`, async () => {
    const { db, library, stagingDir, mallory, alice } = await open({ datasetQuotaBytes: 8 * MIB }, kind)
    const hostage = await library.create(file(8 * MIB, 'hostage'), mallory)
    // 4 MiB buy it a minute past the first stretch at the pace: only the pause below stalls it.
    await put(library, hostage.id, mallory, new Uint8Array(4 * MIB).fill(97), 0, 8 * MIB)
    // While it moves, it holds its whole file: that is what lets a real upload finish for sure.
    const early = await quotaRefusal(library.create(file(10 * KIB), alice))
    assert.match(early, /the file is 10\.0 KiB, and the coordinator's dataset quota \(8 MiB, --dataset-quota-mb\) has 0\.0 MiB left after stored data \(0\.0 MiB\) and uploads in progress \(8\.0 MiB\); ask the operator for room/)

    // No piece for longer than the hold: it holds its 4 MiB received, and the rest is free. Only
    // its last piece is backdated: a real pause of an hour would leave 4 MiB behind the pace too,
    // and this is the pause's rule alone (a file on pace after an hour is hundreds of MiB).
    await pause(db, hostage.id, UPLOAD_HOLD_MS + 30_000)
    assert.equal(await stagedUploadBytes(db), 4 * MIB)
    const theirs = await library.create(file(4 * MIB, 'theirs'), alice)
    assert.equal(await stagedUploadBytes(db), 8 * MIB)

    // Resuming finds its room taken: refused with what is left and what to do, and nothing moves.
    const before = await row(db, hostage.id)
    const refused = await quotaRefusal(put(library, hostage.id, mallory, new Uint8Array(100).fill(98), 4 * MIB, 8 * MIB))
    assert.equal(refused, 'this upload had no piece for 1 hour, so it held only the 4.0 MiB it has received, and the rest of its file is 4.0 MiB, ' +
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
    // Theirs, announced over an hour ago with nothing sent, is slow too: even ten bytes need room.
    const theirsRefused = await quotaRefusal(put(library, theirs.id, alice, new Uint8Array(10).fill(99), 0, 4 * MIB))
    assert.match(theirsRefused, /this upload is slow .* piece by piece; this piece is 10 bytes, and the coordinator's dataset quota \(8 MiB, --dataset-quota-mb\) has 0\.0 MiB left/)
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
  await pause(db, slow.id, UPLOAD_HOLD_MS + 30_000)
  await library.create(file(4 * MIB, 'theirs'), alice)
  body.end(Buffer.alloc(100))
  const err = await piece
  assert.ok(err instanceof CoordinatorError && err.code === 'ERR_QUOTA_EXCEEDED', String(err))
  assert.match(err.message, /this upload stalled \(no piece for 1 hour, or under 64 KiB\/s on average\) and held only the 4\.0 MiB it had received, and with this piece it holds its whole file again: the rest is 4\.0 MiB, and the coordinator's dataset quota \(8 MiB, --dataset-quota-mb\) has 0\.0 MiB left/)
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
  assert.match(refused, /carries on only while there is room, piece by piece; this piece is 10 bytes, .*; the upload stays at byte 10 for 24 hours/)
})

for (const kind of ['pglite', 'postgres'] as const) {
  test(`${kind}: pieces sent at once to two slow uploads cannot both take the same free room: each is checked at its end, one at a time`, async () => {
    const { db, library, stagingDir, mallory, alice } = await open({ datasetQuotaBytes: 8 * MIB }, kind)
    const a = await library.create(file(8 * MIB, 'a'), mallory)
    await age(db, a.id, UPLOAD_HOLD_MS + 30_000, UPLOAD_HOLD_MS + 30_000)
    const b = await library.create(file(8 * MIB, 'b'), alice)
    // Announced three hours ago, touched a minute ago, nothing sent: both far behind the pace, holding nothing.
    for (const id of [a.id, b.id]) await age(db, id, 3 * HOUR, 60_000)
    assert.equal(await stagedUploadBytes(db), 0)
    const bodies = [new PassThrough(), new PassThrough()]
    const pieces = [library.append(a.id, mallory, { start: 0, length: 5 * MIB, total: 8 * MIB }, bodies[0]!), library.append(b.id, alice, { start: 0, length: 5 * MIB, total: 8 * MIB }, bodies[1]!)]
    const outcomes = Promise.allSettled(pieces)
    // Both pieces are past their first check and being written, each against the same 8 MiB free.
    for (const body of bodies) body.write(Buffer.alloc(MIB))
    const size = async (id: string): Promise<number> => await stat(join(stagingDir, id)).then((s) => s.size, () => 0)
    for (let i = 0; i < 400 && ((await size(a.id)) < MIB || (await size(b.id)) < MIB); i++) await new Promise((r) => setTimeout(r, 25))
    for (const body of bodies) body.end(Buffer.alloc(4 * MIB))
    const [first, second] = await outcomes
    const kept = [first, second].filter((o) => o.status === 'fulfilled')
    const refused = [first, second].flatMap((o) => o.status === 'rejected' ? [o.reason as unknown] : [])
    assert.equal(kept.length, 1, 'one piece fits')
    assert.equal(refused.length, 1, 'the other does not')
    const err = refused[0]
    assert.ok(err instanceof CoordinatorError && err.code === 'ERR_QUOTA_EXCEEDED', String(err))
    assert.match(err.message, /^this upload is slow \(under 64 KiB\/s on average since it was announced, after its first 10 minutes\), so it holds no room for the rest of its file and carries on only while there is room, piece by piece; this piece is 5\.0 MiB, and the coordinator's dataset quota \(8 MiB, --dataset-quota-mb\) has 3\.0 MiB left after stored data \(0\.0 MiB\) and uploads in progress \(5\.0 MiB\); the upload stays at byte 0 for 24 hours after its last piece/)
    assert.equal(await stagedUploadBytes(db), 5 * MIB, 'the kept piece, nothing over the quota')
    const received = [(await row(db, a.id)).received_bytes, (await row(db, b.id)).received_bytes].sort((x, y) => x - y)
    assert.deepEqual(received, [0, 5 * MIB])
    assert.deepEqual([await size(a.id), await size(b.id)].sort((x, y) => x - y), [0, 5 * MIB], 'the refused piece was cut off again')
  })
}

test('a slow upload carries on piece by piece: a piece that fits is kept though the rest of its file would not, one that does not is refused with nothing changed', async () => {
  const { db, library, stagingDir, mallory, alice } = await open({ datasetQuotaBytes: 8 * MIB })
  const slow = await library.create(file(8 * MIB, 'slow'), mallory)
  await put(library, slow.id, mallory, new Uint8Array(10).fill(97), 0, 8 * MIB)
  await age(db, slow.id, 3 * HOUR, 60_000)
  const theirs = await library.create(file(8 * MIB - 10, 'theirs'), alice)
  await put(library, theirs.id, alice, new Uint8Array(2 * MIB), 0, 8 * MIB - 10)

  const before = await row(db, slow.id)
  const refused = await quotaRefusal(put(library, slow.id, mallory, new Uint8Array(100), 10, 8 * MIB))
  assert.equal(refused, 'this upload is slow (under 64 KiB/s on average since it was announced, after its first 10 minutes), so it holds no room for the rest of its file and carries on only while there is room, piece by piece; this piece is 100 bytes, ' +
    'and the coordinator\'s dataset quota (8 MiB, --dataset-quota-mb) has 0.0 MiB left after stored data (0.0 MiB) and uploads in progress (8.0 MiB); ' +
    'the upload stays at byte 10 for 24 hours after its last piece: resume it later, once other uploads have finished or failed, or ask the operator for room')
  const after = await row(db, slow.id)
  assert.deepEqual([after.received_bytes, after.updated_at.getTime()], [10, before.updated_at.getTime()])
  assert.equal((await stat(join(stagingDir, slow.id))).size, 10)

  // Theirs pauses past the hour: it holds its 2 MiB, and 6 MiB are free, less than the rest of the slow file but room for a piece.
  await age(db, theirs.id, UPLOAD_HOLD_MS + 30_000, UPLOAD_HOLD_MS + 30_000)
  const kept = await put(library, slow.id, mallory, new Uint8Array(MIB), 10, 8 * MIB)
  assert.equal(kept.receivedBytes, MIB + 10)
  assert.equal(await stagedUploadBytes(db), MIB + 10 + 2 * MIB, 'still slow, it holds what it received and takes nothing more')
})

test('announcing the whole quota again each hour and sending nothing does not work: the uploader\'s own stalled upload counts whole for them, not for others', async () => {
  const { db, library, mallory, alice } = await open({ datasetQuotaBytes: 8 * MIB })
  const hostage = await library.create(file(8 * MIB, 'hostage'), mallory)
  await age(db, hostage.id, UPLOAD_HOLD_MS + 30_000, UPLOAD_HOLD_MS + 30_000)
  assert.equal(await stagedUploadBytes(db), 0)
  assert.equal(await stagedUploadBytes(db, { fullFor: mallory }), 8 * MIB)
  const again = await quotaRefusal(library.create(file(8 * MIB, 'hostage'), mallory))
  assert.equal(again, 'the file is 8.0 MiB, and the coordinator\'s dataset quota (8 MiB, --dataset-quota-mb) has 0.0 MiB left after stored data (0.0 MiB) and uploads in progress ' +
    '(8.0 MiB; your stalled uploads count whole for you, 8.0 MiB more than for others, until you resume them or they are abandoned 24 hours after their last piece); ask the operator for room')
  await quotaRefusal(library.create(file(1, 'tiny'), mallory))
  await library.create(file(8 * MIB, 'theirs'), alice)
  // Abandoned after a day, it counts for nobody: its uploader may announce again, within what others left.
  await age(db, hostage.id, 25 * HOUR, 25 * HOUR)
  assert.match(await quotaRefusal(library.create(file(1, 'tiny'), mallory)), /has 0\.0 MiB left after stored data \(0\.0 MiB\) and uploads in progress \(8\.0 MiB\); ask/)
  assert.equal((await row(db, hostage.id)).status, 'failed')
})

for (const kind of ['pglite', 'postgres'] as const) {
  test(`${kind}: one account takes at most its share (--user-dataset-quota-mb): on announcing, on resuming, for a tokenizer; the others keep theirs`, async () => {
    const { db, blobs, library, user, mallory, alice } = await open({ datasetQuotaBytes: MIB, userDatasetQuotaBytes: 512 * KIB }, kind)
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
    const shareFull = await quotaRefusal(library.create(file(12 * KIB + 1, 'more'), alice))
    assert.match(shareFull, /your share of the dataset quota .* has 12\.0 KiB left/)
    // A third has room in their share, but the install has only 24 KiB left.
    const carol = await user('carol@quota.test')
    const installFull = await quotaRefusal(library.create(file(24 * KIB + 1, 'carols'), carol))
    assert.match(installFull, /^the file is 24\.0 KiB, and the coordinator's dataset quota \(1 MiB, --dataset-quota-mb\) has 24\.0 KiB left after stored data \(100\.0 KiB\) and uploads in progress \(900\.0 KiB\); ask the operator for room$/)

    // A stalled upload frees its room for others, not for its own uploader: announcing again is refused, saying why.
    await age(db, first.id, UPLOAD_HOLD_MS + 60_000, UPLOAD_HOLD_MS + 60_000)
    const again = await quotaRefusal(library.create(file(300 * KIB, 'third'), mallory))
    assert.match(again, /your share of the dataset quota \(512\.0 KiB an account, --user-dataset-quota-mb\) has 12\.0 KiB left after your stored data \(100\.0 KiB\) and your uploads in progress \(400\.0 KiB; your stalled uploads count whole for you, 400\.0 KiB more than for others, until you resume them or they are abandoned 24 hours after their last piece\)/)
    await library.create(file(300 * KIB, 'carols'), carol)
    // The stalled one is slow (nothing in over an hour): it carries on piece by piece, each within both quotas.
    assert.equal((await put(library, first.id, mallory, new Uint8Array(10), 0, 400 * KIB)).receivedBytes, 10)
    const past = await quotaRefusal(put(library, first.id, mallory, new Uint8Array(200 * KIB), 10, 400 * KIB))
    assert.match(past, /this piece is 200\.0 KiB, and the coordinator's dataset quota \(1 MiB, --dataset-quota-mb\) has 124\.0 KiB left after stored data \(100\.0 KiB\) and uploads in progress \(800\.0 KiB\)/)
    assert.equal((await row(db, first.id)).received_bytes, 10)

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
  // The worker's budget is the room when tokenizing starts, so it stops before writing the shard.
  assert.match(failed.error ?? '', /^tokenizing stopped after \d+ documents and 0 shards of 0 tokens: train shard 1 \([\d.]+ KiB\) would take this dataset's shards and index past 1\.0 KiB \(0\.0 MiB so far\), the room it had when tokenizing began: your share of the dataset quota \(1\.0 KiB an account, --user-dataset-quota-mb\) had 1\.0 KiB left/)
  assert.equal((await db.selectFrom('blobs').select('sha256').where('kind', 'in', ['shard', 'documents']).execute()).length, 0)
  assert.equal(await stagedUploadBytes(db), 0, 'a failed upload holds nothing')
})

/** A change feed that calls `onPublish` as each change is announced, in the announcer's turn. */
class WatchedFeed extends ChangeFeed {
  onPublish: ((topic: ChangeTopic) => void) | undefined
  override publish (topic: ChangeTopic, runId?: string): void {
    this.onPublish?.(topic)
    super.publish(topic, runId)
  }
}

test('shards that fit the room when tokenizing began but not when they are stored (others took it meanwhile) fail the dataset with the figures, and leave nothing behind', async () => {
  const bytes = jsonl(400)
  const changes = new WatchedFeed()
  const { db, library, stagingDir, alice } = await open({ datasetQuotaBytes: 4 * MIB, userDatasetQuotaBytes: 2 * MIB }, 'pglite', changes)
  const created = await library.create(file(bytes.byteLength), alice)
  await put(library, created.id, alice, bytes, 0, bytes.byteLength)
  // The worker's first progress is saved and announced while it tokenizes, after its budget (the
  // whole share) was fixed and before the shards are checked again: another store of the
  // uploader's takes all but 1 KiB of the share then, as a second dataset's shards being stored would.
  let taken: (() => void) | undefined
  changes.onPublish = (topic) => { if (topic === 'datasets' && taken === undefined) taken = reserveDataRoom(db, 2 * MIB - KIB, alice) }
  await library.idle()
  assert.ok(taken !== undefined, 'the room was taken while tokenizing')
  taken()
  const failed = await library.get(created.id, { id: alice, admin: false })
  assert.equal(failed.status, 'failed')
  assert.match(failed.error ?? '', /^this dataset makes [\d.]+ KiB of shards and index, and your share of the dataset quota \(2 MiB an account, --user-dataset-quota-mb\) has 1\.0 KiB left after your stored data \(2\.0 MiB\) and your uploads in progress \(0\.0 MiB\); ask the operator for room$/)
  assert.equal((await db.selectFrom('blobs').select('sha256').where('kind', 'in', ['shard', 'documents']).execute()).length, 0, 'no shard or index is stored')
  assert.equal(await uploadedDataBytes(db, alice), 0, 'and no room is held for them')
  assert.equal(await stagedUploadBytes(db), 0, 'a failed upload holds nothing')
  assert.deepEqual(await filesUnder(stagingDir), [], 'the staged file and the worker\'s shard folder are gone')
})

/** Everything under `dir`, as relative paths. */
async function filesUnder (dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort()
}

test('a ~10 KB Parquet file whose row groups all name one compressed page of text is refused from its footer: nothing is written toward its gigabytes', async () => {
  const { db, library, stagingDir, mallory } = await open({ datasetQuotaBytes: MIB, userDatasetQuotaBytes: MIB })
  // 24 row groups naming one ZSTD page of 8 MiB of text: 192 MiB of text from a file of ~9 KB.
  const bytes = zstdParquet({ groups: 24, rows: 8, rowBytes: MIB, shared: true })
  assert.ok(bytes.length < 10 * KIB)
  const created = await library.create({ name: 'bomb', format: 'parquet', field: 'text', tokenizer: 'byte', fileName: 'bomb.parquet', fileBytes: bytes.length }, mallory)
  await put(library, created.id, mallory, bytes, 0, bytes.length)
  await library.idle()
  const failed = await library.get(created.id, { id: mallory, admin: false })
  assert.equal(failed.status, 'failed')
  assert.match(failed.error ?? '', /^row group 1's "text" column chunk \(bytes 4 to \d+\) overlaps row group 0's \(bytes 4 to \d+\): each row group must have pages of its own/)
  assert.deepEqual(await filesUnder(stagingDir), [], 'the staged file and the shard folder are gone')
  assert.equal((await db.selectFrom('blobs').select('sha256').where('kind', 'in', ['shard', 'documents']).execute()).length, 0)
})

test('a file that tokenizes into more than the uploader\'s room is stopped by the worker before the shard that would pass it, the room named', async () => {
  const { db, library, stagingDir, alice } = await open({ datasetQuotaBytes: 4 * MIB, userDatasetQuotaBytes: MIB })
  // Japanese through gpt2-1k: a token a byte, two bytes a token in a shard, so ~600 KB becomes ~1.2 MB.
  const text = Buffer.from(Array.from({ length: 10_000 }, (_, i) => `段落${i}:漢字のテキスト、とても長い段落です。`).join('\n\n'))
  assert.ok(text.length > 600 * KIB && text.length < 700 * KIB)
  const created = await library.create({ name: 'wide', format: 'text', field: null, tokenizer: 'gpt2-1k', fileName: 'wide.txt', fileBytes: text.length }, alice)
  await put(library, created.id, alice, text, 0, text.length)
  await library.idle()
  const failed = await library.get(created.id, { id: alice, admin: false })
  assert.equal(failed.status, 'failed')
  assert.match(failed.error ?? '', /^tokenizing stopped after \d+ documents and 0 shards of 0 tokens: train shard 1 \(1\.\d MiB\) would take this dataset's shards and index past 1\.0 MiB \(0\.0 MiB so far\), the room it had when tokenizing began: your share of the dataset quota \(1 MiB an account, --user-dataset-quota-mb\) had 1\.0 MiB left after your stored data \(0\.0 MiB\) and your other uploads in progress \(0\.0 MiB\); upload a smaller part of the file, or ask the operator for room$/)
  assert.deepEqual(await filesUnder(stagingDir), [], 'the staged file and the shard folder are gone')
  assert.equal((await db.selectFrom('blobs').select('sha256').where('kind', 'in', ['shard', 'documents']).execute()).length, 0)
  assert.equal(await stagedUploadBytes(db), 0, 'a failed upload holds nothing')
})

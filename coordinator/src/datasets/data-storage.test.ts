import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createTestDatabase } from '../../../test/support/postgres.ts'
import { openDatabase } from '../db/open-database.ts'
import { UPLOAD_FIRST_STRETCH_MS, UPLOAD_HOLD_MS, UPLOAD_PACE_BYTES_PER_S, dataRoom, heldBytes, holdsWholeFile, reserveDataRoom, stagedUploadBytes, uploadedDataBytes, withDataQuota } from './data-storage.ts'

test('room reserved for a dataset being stored counts as used until released, once, and only on its own database', async () => {
  const a = await openDatabase({ dataDir: 'memory://' })
  const b = await openDatabase({ dataDir: 'memory://' })
  try {
    await a.db.insertInto('blobs').values({ sha256: 'a'.repeat(64), size: 100, kind: 'shard', meta: JSON.stringify({ uploadedBy: 'u' }) }).execute()
    assert.equal(await uploadedDataBytes(a.db), 100)
    const release = await withDataQuota(a.db, async () => reserveDataRoom(a.db, 1000))
    assert.equal(await uploadedDataBytes(a.db), 1100, 'a check made meanwhile sees the room taken')
    assert.equal(await uploadedDataBytes(b.db), 0, 'another install is not affected')
    release()
    release()
    assert.equal(await uploadedDataBytes(a.db), 100, 'released once, whatever the calls')
  } finally {
    await a.close()
    await b.close()
  }
})

test('room reserved for one account counts for that account and the install, and no other account', async () => {
  const a = await openDatabase({ dataDir: 'memory://' })
  try {
    await a.db.insertInto('blobs').values({ sha256: 'c'.repeat(64), size: 100, kind: 'tokenizer', meta: JSON.stringify({ uploadedBy: 'u' }) }).execute()
    const release = reserveDataRoom(a.db, 1000, 'u')
    assert.deepEqual([await uploadedDataBytes(a.db), await uploadedDataBytes(a.db, 'u'), await uploadedDataBytes(a.db, 'v')], [1100, 1100, 0])
    release()
    assert.deepEqual([await uploadedDataBytes(a.db), await uploadedDataBytes(a.db, 'u')], [100, 100])
  } finally {
    await a.close()
  }
})

test('an upload holds its whole file while a piece came within the hour and, after a first stretch, it keeps the pace it was announced at; else only what it received', () => {
  const now = Date.parse('2026-12-20T12:00:00Z')
  const upload = (createdAgo: number, touchedAgo: number, received: number, status: 'uploading' | 'tokenizing' | 'failed' = 'uploading') =>
    ({ status, file_bytes: 10 * 1024 ** 3, received_bytes: received, created_at: new Date(now - createdAgo), updated_at: new Date(now - touchedAgo) })
  const minute = 60_000
  const whole = 10 * 1024 ** 3
  assert.equal(heldBytes(upload(0, 0, 0), now), whole, 'just announced')
  assert.equal(heldBytes(upload(UPLOAD_FIRST_STRETCH_MS, UPLOAD_FIRST_STRETCH_MS, 0), now), whole, 'the first stretch without a byte, to the millisecond')
  assert.equal(heldBytes(upload(UPLOAD_FIRST_STRETCH_MS + 1, UPLOAD_FIRST_STRETCH_MS + 1, 0), now), 0, 'past it, nothing sent: the announcement alone holds nothing')
  // Well ahead of the pace, the hour without a piece decides.
  const ahead = whole - 1
  assert.equal(heldBytes(upload(2 * UPLOAD_HOLD_MS, UPLOAD_HOLD_MS, ahead), now), whole, 'an hour without a piece, to the millisecond')
  assert.equal(heldBytes(upload(2 * UPLOAD_HOLD_MS, UPLOAD_HOLD_MS + 1, ahead), now), ahead, 'past the hour')
  // Three hours in: the pace asks for three hours' worth of bytes but the first stretch.
  const due = (3 * 3600_000 - UPLOAD_FIRST_STRETCH_MS) / 1000 * UPLOAD_PACE_BYTES_PER_S
  assert.equal(heldBytes(upload(3 * 60 * minute, minute, due), now), whole, 'on pace')
  assert.equal(heldBytes(upload(3 * 60 * minute, minute, due - UPLOAD_PACE_BYTES_PER_S), now), due - UPLOAD_PACE_BYTES_PER_S, 'a second behind')
  assert.equal(heldBytes(upload(3 * 60 * minute, 3 * 60 * minute, 10 * 1024 ** 3, 'tokenizing'), now), 10 * 1024 ** 3, 'tokenizing holds its file whatever its age')
  assert.equal(holdsWholeFile(upload(0, 0, 5, 'failed'), now), false)
  // For its own uploader a stalled upload counts whole, for anyone else only what it received.
  const stalled = { ...upload(UPLOAD_HOLD_MS + 1, UPLOAD_HOLD_MS + 1, 5), created_by: 'u' }
  assert.deepEqual([heldBytes(stalled, now, 'u'), heldBytes(stalled, now, 'v'), heldBytes(stalled, now)], [10 * 1024 ** 3, 5, 5])
  assert.equal(heldBytes({ ...stalled, status: 'failed' }, now, 'u'), 5, 'a failed upload is no upload in progress')
})

for (const kind of ['pglite', 'postgres'] as const) {
  test(`${kind}: the database counts what uploads hold as heldBytes says, for anyone and for their uploader, one upload at a time and all together`, async () => {
    const fresh = kind === 'postgres' ? await createTestDatabase() : undefined
    const a = await openDatabase({ dataDir: 'memory://', databaseUrl: fresh?.url })
    try {
      const account = async (email: string): Promise<string> => (await a.db.insertInto('users').values({ email, display_name: 'U', password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
      const user = await account('u@held.test')
      const other = await account('v@held.test')
      const now = Date.now()
      const second = 1000
      const hour = 3600 * second
      const file = 64 * 1024 ** 3
      const due = (ago: number): number => Math.max(0, (ago - UPLOAD_FIRST_STRETCH_MS) / 1000 * UPLOAD_PACE_BYTES_PER_S)
      // [status, announced ago, last piece ago, received]: each a second or more either side of a rule.
      const cases: Array<['uploading' | 'tokenizing' | 'ready', number, number, number]> = [
        ['uploading', 0, 0, 0], ['uploading', 10 * second, 10 * second, 5],
        ['uploading', UPLOAD_FIRST_STRETCH_MS - second, UPLOAD_FIRST_STRETCH_MS - second, 0], ['uploading', UPLOAD_FIRST_STRETCH_MS + second, UPLOAD_FIRST_STRETCH_MS + second, 7],
        ['uploading', UPLOAD_HOLD_MS + second, UPLOAD_HOLD_MS + second, 7], ['uploading', 5 * hour, UPLOAD_HOLD_MS - second, due(5 * hour) + 10 * UPLOAD_PACE_BYTES_PER_S],
        ['uploading', 5 * hour, second, due(5 * hour) + UPLOAD_PACE_BYTES_PER_S], ['uploading', 5 * hour, second, due(5 * hour) - UPLOAD_PACE_BYTES_PER_S],
        ['uploading', 5 * hour, UPLOAD_HOLD_MS + second, due(5 * hour) + 10 * UPLOAD_PACE_BYTES_PER_S],
        ['tokenizing', 30 * hour, 30 * hour, file], ['ready', 0, 0, file]
      ]
      let expected = 0
      let whole = 0
      // Each case twice: the user's own upload, and another account's.
      for (const [status, createdAgo, touchedAgo, received] of cases) {
        for (const owner of [user, other]) {
          const row = { status, file_bytes: file, received_bytes: received, created_at: new Date(now - createdAgo), updated_at: new Date(now - touchedAgo), created_by: owner }
          const { id } = await a.db.insertInto('datasets').values({ ...row, name: 'd', format: 'text', field: null, tokenizer: 'byte', file_name: 'd.txt' }).returning('id').executeTakeFirstOrThrow()
          const what = `${owner === user ? 'own' : 'another\'s'}, ${status}, announced ${createdAgo / second} s ago, last piece ${touchedAgo / second} s ago, ${received} bytes`
          const alone = async (options: { fullFor?: string, asking?: string }): Promise<number> => await stagedUploadBytes(a.db, { now, ...options }) - await stagedUploadBytes(a.db, { now, ...options, except: id })
          const held = status === 'ready' ? 0 : heldBytes(row, now)
          assert.equal(await alone({}), held, what)
          assert.equal(await alone({ fullFor: user }), status === 'ready' ? 0 : heldBytes(row, now, user), `${what}, for the user`)
          assert.equal(await alone({ fullFor: user, asking: id }), held, `${what}, for the user, asking for it`)
          if (owner === user) {
            expected += held
            if (status !== 'ready') whole += file
          }
        }
      }
      assert.ok(whole > expected, 'some of the user\'s uploads stalled')
      assert.equal(await stagedUploadBytes(a.db, { now, userId: user }), expected)
      assert.equal(await stagedUploadBytes(a.db, { now, userId: user, fullFor: user }), whole)
      assert.equal(await stagedUploadBytes(a.db, { now, userId: other, fullFor: user }), expected, 'another account\'s uploads count as they hold')
      assert.equal(await stagedUploadBytes(a.db, { now, userId: '00000000-0000-0000-0000-000000000000' }), 0)
    } finally {
      await a.close()
      await fresh?.drop()
    }
  })
}

test('the room an ingest may write is the smaller of the account\'s share and the install\'s, naming which, with the tokenizing dataset\'s own file left out', async () => {
  const { db, close } = await openDatabase({ dataDir: 'memory://' })
  try {
    const user = async (email: string): Promise<string> => (await db.insertInto('users').values({ email, display_name: email, password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
    const [u, v] = [await user('u@room.test'), await user('v@room.test')]
    await db.insertInto('blobs').values([
      { sha256: 'a'.repeat(64), size: 1000, kind: 'shard', meta: JSON.stringify({ uploadedBy: u }) },
      { sha256: 'b'.repeat(64), size: 6000, kind: 'shard', meta: JSON.stringify({ uploadedBy: v }) }
    ]).execute()
    const now = new Date()
    const dataset = (createdBy: string, bytes: number) => ({ name: 'd', created_by: createdBy, status: 'tokenizing' as const, format: 'text' as const, field: null, tokenizer: 'byte', file_name: 'd.txt', file_bytes: bytes, received_bytes: bytes, created_at: now, updated_at: now })
    const mine = (await db.insertInto('datasets').values(dataset(u, 500)).returning('id').executeTakeFirstOrThrow()).id
    await db.insertInto('datasets').values(dataset(u, 200)).execute()
    const quota = { datasetQuotaBytes: 10_000, userDatasetQuotaBytes: 5000 }
    // u: its share has 5000 - 1000 - 200 = 3800, the install 10000 - 7000 - 200 = 2800; its own tokenizing file is not counted.
    const room = await dataRoom(db, quota, { userId: u, except: mine })
    assert.equal(room.bytes, 2800)
    assert.match(room.limit, /^the coordinator's dataset quota \(9\.8 KiB, --dataset-quota-mb\) had 2\.7 KiB left after stored data \(6\.8 KiB\) and other uploads in progress \(0\.2 KiB\)$/)
    // v is past its share already: no room, its share named.
    const none = await dataRoom(db, quota, { userId: v })
    assert.equal(none.bytes, 0)
    assert.match(none.limit, /^your share of the dataset quota \(4\.9 KiB an account, --user-dataset-quota-mb\) had 0\.0 MiB left after your stored data \(5\.9 KiB\)/)
    assert.equal((await dataRoom(db, { datasetQuotaBytes: Infinity }, { userId: u })).bytes, Infinity)
  } finally {
    await close()
  }
})

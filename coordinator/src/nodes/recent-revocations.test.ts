import { test } from 'vitest'
import assert from 'node:assert/strict'
import { openDatabase } from '../db/open-database.ts'
import { createOrganization } from './organizations.ts'
import { MAX_REVOCATIONS, REVOCATION_WINDOW_MS, RecentRevocations } from './recent-revocations.ts'

test('revocations are listed newest first for the window, at most the newest few; a peer revoked again moves to the front', () => {
  let now = 1_000_000
  const record = new RecentRevocations({ windowMs: 60_000, max: 3, now: () => now })
  assert.deepEqual(record.list(), [])
  record.add('a')
  now += 10_000
  record.add('b')
  now += 10_000
  record.add('c')
  assert.deepEqual(record.list(), ['c', 'b', 'a'])
  assert.deepEqual(record.list(2), ['c', 'b'], 'a reply lists the newest when it cannot list all')
  record.add('a')
  assert.deepEqual(record.list(), ['a', 'c', 'b'], 'revoked again: listed as the newest, once')
  now += 10_000
  record.add('d')
  assert.deepEqual(record.list(), ['d', 'a', 'c'], 'past the cap the oldest goes first')
  // c and a (again) were revoked at +20 s, d at +30 s: a window of 60 s lists them until +80 s and +90 s.
  now = 1_000_000 + 79_999
  assert.deepEqual(record.list(), ['d', 'a', 'c'])
  now = 1_000_000 + 80_000
  assert.deepEqual(record.list(), ['d'], 'a revocation older than the window is not listed')
  now = 1_000_000 + 90_000
  assert.deepEqual(record.list(), [])
  record.add('x'.repeat(129))
  record.add('')
  assert.deepEqual(record.list(), [], 'an id no heartbeat reply may carry is not kept (agents would drop the whole list)')
})

test('the defaults outlast an agent\'s remembered yes (60 s) and stay within a heartbeat reply\'s bounds', () => {
  assert.ok(REVOCATION_WINDOW_MS >= 2 * 60_000, `window ${REVOCATION_WINDOW_MS} ms`)
  let now = 0
  const record = new RecentRevocations({ now: () => now })
  for (let i = 0; i < MAX_REVOCATIONS + 10; i++) record.add(`peer-${i}`)
  const all = record.list()
  assert.equal(all.length, MAX_REVOCATIONS)
  assert.equal(all[0], `peer-${MAX_REVOCATIONS + 9}`)
  assert.equal(all.at(-1), 'peer-10', 'the ten oldest went')
  now = REVOCATION_WINDOW_MS - 1
  assert.equal(record.list().length, MAX_REVOCATIONS, 'still within the window')
  now = REVOCATION_WINDOW_MS
  assert.deepEqual(record.list(), [])
})

test('at start the record holds the nodes revoked within the window, from the database, oldest dropped past the cap', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  try {
    const lab = await createOrganization(db, 'Lab')
    const now = Date.now()
    const node = async (peerId: string, revokedAgoMs: number | null): Promise<void> => {
      await db.insertInto('nodes').values({
        peer_id: peerId, organization_id: lab.id, name: peerId, name_key: peerId, hardware: '{}', agent_version: '0', enrolled_with_token_id: null,
        first_seen_at: new Date(now - 3_600_000), last_seen_at: new Date(now), revoked_at: revokedAgoMs === null ? null : new Date(now - revokedAgoMs)
      }).execute()
    }
    await node('live', null)
    await node('long-ago', 10 * 60_000)
    await node('older', 90_000)
    await node('old', 60_000)
    await node('recent', 5_000)
    const record = await RecentRevocations.load(db, { windowMs: 120_000, now: () => now })
    assert.deepEqual(record.list(), ['recent', 'old', 'older'])
    const capped = await RecentRevocations.load(db, { windowMs: 120_000, max: 2, now: () => now })
    assert.deepEqual(capped.list(), ['recent', 'old'], 'the newest within the cap')
    capped.add('new')
    assert.deepEqual(capped.list(), ['new', 'recent'], 'a live revocation comes after those loaded')
  } finally {
    await database.close()
  }
})

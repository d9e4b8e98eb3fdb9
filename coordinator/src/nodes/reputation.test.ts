import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import { openTestStore } from '../../../test/support/store.ts'
import type { Database } from '../db/schema.ts'
import { appendLedgerEntry } from '../ledger/ledger.ts'
import { CoordinatorError } from '../errors.ts'
import { nodeRecords, quarantineIfWarranted, reasonCode, releaseNode } from './reputation.ts'

let store: Awaited<ReturnType<typeof openTestStore>>
let db: Kysely<Database>
let runId: string
let orgId: string
let otherOrgId: string
let organizerId: string

beforeAll(async () => {
  store = await openTestStore('reputation')
  db = store.db
  orgId = (await db.insertInto('organizations').values({ name: 'Lab A' }).returning('id').executeTakeFirstOrThrow()).id
  otherOrgId = (await db.insertInto('organizations').values({ name: 'Lab B' }).returning('id').executeTakeFirstOrThrow()).id
  organizerId = (await db.insertInto('users').values({ email: 'o@x.test', display_name: 'O', password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
  runId = (await db.insertInto('runs').values({ name: 'r', spec: '{}', failure_reason: null, created_by: organizerId, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
}, 60_000)
afterAll(async () => { await store?.close() })

let nodeCount = 0
async function node (organizationId = orgId): Promise<{ id: string, peerId: string }> {
  const peerId = `peer-${++nodeCount}`
  const row = await db.insertInto('nodes').values({ peer_id: peerId, organization_id: organizationId, name: peerId, hardware: '{}', agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date() })
    .returning('id').executeTakeFirstOrThrow()
  return { id: row.id, peerId }
}

/** One verdict row for `n`, the way report intake writes it, then the quarantine check intake runs after a flag. */
async function verdict (n: { id: string, peerId: string }, outcome: 'accepted' | 'refused', reason: string | null, score: number | null = null): Promise<string | null> {
  return await db.transaction().execute(async (trx) => {
    await appendLedgerEntry(trx, {
      runId, round: 1, nodeId: n.id, peerId: n.peerId, organizationId: orgId, assignmentId: null, tokens: outcome === 'accepted' ? 10 : 0, computeSeconds: 0,
      outcome, reason, metadata: null, signature: null, executor: null, score
    })
    return outcome === 'refused' ? await quarantineIfWarranted(trx, n.id) : null
  })
}

async function quarantined (id: string): Promise<string | null> {
  const row = await db.selectFrom('nodes').select(['quarantined_at', 'quarantine_reason']).where('id', '=', id).executeTakeFirstOrThrow()
  return row.quarantined_at === null ? null : row.quarantine_reason
}

test('a reason\'s code is the ERR_ word before its colon', () => {
  assert.equal(reasonCode('ERR_HARMFUL: on held-out data…'), 'ERR_HARMFUL')
  assert.equal(reasonCode('no code here'), null)
  assert.equal(reasonCode(null), null)
})

test('three flags that are most of the recent record quarantine a node; a stray exclusion or late reports do not', async () => {
  const honest = await node()
  for (let i = 0; i < 10; i++) await verdict(honest, 'accepted', null, 0.01)
  assert.equal(await verdict(honest, 'refused', 'ERR_HARMFUL: unlucky batch', -0.001), null)
  // Timing and bookkeeping are not flags, however many.
  for (let i = 0; i < 5; i++) assert.equal(await verdict(honest, 'refused', 'ERR_STALE: round 1 closed before this report arrived'), null)
  assert.equal(await quarantined(honest.id), null)

  const flipper = await node()
  await verdict(flipper, 'accepted', null, 0.02)
  assert.equal(await verdict(flipper, 'refused', 'ERR_UNRELATED: direction', -0.3), null)
  assert.equal(await verdict(flipper, 'refused', 'ERR_HARMFUL: uphill', -0.2), null)
  const reason = await verdict(flipper, 'refused', 'ERR_HARMFUL: uphill', -0.25)
  assert.equal(reason, '3 of its last 4 judged reports were excluded (ERR_HARMFUL ×2, ERR_UNRELATED)')
  assert.equal(await quarantined(flipper.id), reason)

  const records = await nodeRecords(db)
  const h = records.get(honest.id)!
  assert.deepEqual({ ...h, meanScore: h.meanScore!.toFixed(6) }, { folded: 10, flags: { ERR_HARMFUL: 1 }, meanScore: ((10 * 0.01 - 0.001) / 11).toFixed(6), passedWhileQuarantined: 0 })
  const f = records.get(flipper.id)!
  assert.deepEqual({ ...f, meanScore: f.meanScore!.toFixed(4) }, { folded: 1, flags: { ERR_UNRELATED: 1, ERR_HARMFUL: 2 }, meanScore: (-0.1825).toFixed(4), passedWhileQuarantined: 0 })
})

test('a release is for those who may review the node, and starts its record afresh', async () => {
  const rider = await node()
  for (let i = 0; i < 3; i++) await verdict(rider, 'refused', 'ERR_EMPTY_DELTA: all zeros')
  assert.match(await quarantined(rider.id) ?? '', /^3 of its last 3 judged reports were excluded \(ERR_EMPTY_DELTA ×3\)$/)
  // Scored while quarantined, and passing: evidence for the reviewer, not a flag.
  await verdict(rider, 'refused', 'ERR_QUARANTINED: this node is quarantined', 0.02)
  assert.equal((await nodeRecords(db)).get(rider.id)!.passedWhileQuarantined, 1)

  const stranger = { id: '00000000-0000-4000-8000-000000000099', roles: ['lab_admin'] as const, organizationId: otherOrgId }
  const refusal = await releaseNode(db, { ...stranger, roles: [...stranger.roles] }, rider.id).catch((err: unknown) => err)
  assert.ok(refusal instanceof CoordinatorError && refusal.code === 'ERR_FORBIDDEN', String(refusal))
  // Nor its own lab's admin: a lab that poisons or free-rides could lift it at once.
  await assert.rejects(releaseNode(db, { id: '00000000-0000-4000-8000-000000000098', roles: ['lab_admin'], organizationId: orgId }, rider.id), /a node's own lab cannot release it/)
  const unrelatedOrganizer = await db.insertInto('users').values({ email: 'u@x.test', display_name: 'U', password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()
  await assert.rejects(releaseNode(db, { id: unrelatedOrganizer.id, roles: ['organizer'], organizationId: null }, rider.id), /only an admin/)
  assert.notEqual(await quarantined(rider.id), null, 'refused reviews change nothing')

  // Where anyone may organize, only an admin may.
  await assert.rejects(releaseNode(db, { id: organizerId, roles: ['organizer'], organizationId: null }, rider.id, false), /only an admin may review/)
  // The organizer of a run it reported to may.
  await releaseNode(db, { id: organizerId, roles: ['organizer'], organizationId: null }, rider.id)
  assert.equal(await quarantined(rider.id), null)
  await assert.rejects(releaseNode(db, { id: organizerId, roles: ['organizer'], organizationId: null }, rider.id), /not quarantined/)
  await assert.rejects(releaseNode(db, { id: organizerId, roles: ['admin'], organizationId: null }, '00000000-0000-4000-8000-000000000123'), /no such node/)
  assert.equal((await nodeRecords(db)).get(rider.id), undefined, 'nothing since the review')
  // Old flags no longer count: two new ones are not three.
  await verdict(rider, 'refused', 'ERR_EMPTY_DELTA: all zeros')
  assert.equal(await verdict(rider, 'refused', 'ERR_EMPTY_DELTA: all zeros'), null)
  assert.notEqual(await verdict(rider, 'refused', 'ERR_NEAR_ZERO: tiny'), null)
})

test('a release is timed in whole milliseconds, as ledger rows are, and a row in its millisecond counts toward the new record', async () => {
  const rider = await node()
  for (let i = 0; i < 3; i++) await verdict(rider, 'refused', 'ERR_EMPTY_DELTA: all zeros')
  await releaseNode(db, { id: organizerId, roles: ['admin'], organizationId: null }, rider.id)
  const { whole } = await db.selectFrom('nodes').select(sql<boolean>`reviewed_at = date_trunc('milliseconds', reviewed_at)`.as('whole'))
    .where('id', '=', rider.id).executeTakeFirstOrThrow()
  assert.equal(whole, true, 'a sub-millisecond release time sorts a same-millisecond row (whole ms) before it')
  // A flag written in the release's own millisecond, which the reviewer could not have seen.
  await verdict(rider, 'refused', 'ERR_EMPTY_DELTA: all zeros')
  await sql`update ledger set created_at = (select reviewed_at from nodes where id = ${rider.id})
    where seq = (select max(seq) from ledger where node_id = ${rider.id})`.execute(db)
  assert.deepEqual((await nodeRecords(db)).get(rider.id)?.flags, { ERR_EMPTY_DELTA: 1 })
  await verdict(rider, 'refused', 'ERR_EMPTY_DELTA: all zeros')
  assert.notEqual(await verdict(rider, 'refused', 'ERR_EMPTY_DELTA: all zeros'), null, 'three flags since the release, the first in its millisecond')
})

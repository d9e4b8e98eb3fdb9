import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import type { Kysely } from 'kysely'
import { openTestStore } from '../../../test/support/store.ts'
import type { Database } from '../db/schema.ts'
import { AnswerCache, checkpointProvenance } from './provenance.ts'
import type { CheckpointProvenance, ProvenanceAnswer } from './provenance.ts'

let store: Awaited<ReturnType<typeof openTestStore>>
let db: Kysely<Database>
let runId: string
const SHARD = 'a'.repeat(64)

beforeAll(async () => {
  store = await openTestStore('provenance')
  db = store.db
  const index = { format: 'barnraise-documents-v1', source: 'notes.jsonl', tokenizer: 'byte', shards: [{ sha256: SHARD, tokens: 300 }], documents: [['line 1', 0, 100], ['line 2', 100, 200], ['line 3', 200, 300]], heldOut: ['line 4'] }
  const indexSha = await store.blobs.put(gzipSync(JSON.stringify(index)))
  runId = (await db.insertInto('runs').values({ name: 'r', status: 'running', spec: JSON.stringify({ dataset: { source: 'urls' }, documentIndex: indexSha }), failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null }).returning('id').executeTakeFirstOrThrow()).id
  const org = (await db.insertInto('organizations').values({ name: 'Lab' }).returning('id').executeTakeFirstOrThrow()).id
  const node = (await db.insertInto('nodes').values({ peer_id: 'peer-1', organization_id: org, name: 'n', hardware: '{}', agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date() }).returning('id').executeTakeFirstOrThrow()).id
  for (const [round, start, end] of [[1, 0, 150], [2, 150, 250]] as const) {
    const roundId = (await db.insertInto('rounds').values({ run_id: runId, number: round, status: 'closed', base_checkpoint: 'b'.repeat(64), deadline_at: new Date() }).returning('id').executeTakeFirstOrThrow()).id
    await db.insertInto('assignments').values({ run_id: runId, round_id: roundId, node_id: node, ranges: JSON.stringify([{ shard: SHARD, start, end }]), tokens: end - start, status: 'accepted', report_blob: 'c'.repeat(64) }).execute()
    await db.insertInto('checkpoints').values({ sha256: String(round).repeat(64), run_id: runId, round, tokens_seen: end, val_loss: null }).execute()
  }
}, 60_000)
afterAll(async () => { await store?.close() })

const parsed = (answer: ProvenanceAnswer): CheckpointProvenance => JSON.parse(Buffer.from(answer.json).toString('utf8')) as CheckpointProvenance

test('a checkpoint\'s documents are traced once: asked again, or by many at once, the answer (finished JSON and CSV bodies) is shared', async () => {
  const [a, b] = await Promise.all([checkpointProvenance(store, runId), checkpointProvenance(store, runId, 2)])
  assert.equal(a, b, 'the latest checkpoint and round 2 are one answer')
  assert.equal(a.round, 2)
  assert.deepEqual(parsed(a).documents.map((d) => [d.locator, d.trainedTokens, d.rounds]), [['line 1', 100, [1]], ['line 2', 100, [1, 2]], ['line 3', 50, [2]]])
  assert.deepEqual(parsed(a).units.map((u) => u.round), [1, 2])
  assert.equal(await checkpointProvenance(store, runId), a)
  assert.match(Buffer.from(a.csv).toString('utf8'), /^source,locator,tokens,trained_tokens,rounds,nodes\nnotes\.jsonl,line 1,100,100,1,peer-1\n/)
  assert.deepEqual([...a.summary.firstRounds], [1, 1, 2])
  // Another checkpoint is another answer.
  const first = await checkpointProvenance(store, runId, 1)
  assert.notEqual(first, a)
  assert.deepEqual(parsed(first).documents.map((d) => d.locator), ['line 1', 'line 2'])
  await assert.rejects(checkpointProvenance(store, runId, 3), /has no checkpoint for round 3/)
})

test('public requests start at most two traces at once; more are refused ERR_BUSY (kept answers and the coordinator\'s own requests are not)', async () => {
  const cache = new AnswerCache()
  const answer = (round: number): ProvenanceAnswer => ({ round, json: new Uint8Array(1), csv: new Uint8Array(1), summary: { source: 's', heldOut: 0, firstRounds: new Int32Array(0) } })
  const releases: Array<() => void> = []
  const slow = (round: number) => async (): Promise<ProvenanceAnswer> => await new Promise((resolve) => { releases.push(() => { resolve(answer(round)) }) })
  const a = cache.get('r:1', slow(1), true)
  const b = cache.get('r:2', slow(2), true)
  await assert.rejects(cache.get('r:3', slow(3), true), /already listing the documents of 2 other checkpoints/)
  const own = cache.get('r:4', slow(4), false)
  const same = cache.get('r:1', slow(1), true)
  for (const release of releases) release()
  assert.deepEqual((await Promise.all([a, b, own, same])).map((x) => x.round), [1, 2, 4, 1])
  // Once those are made, a public request may start one again.
  assert.equal((await cache.get('r:3', async () => answer(3), true)).round, 3)
})

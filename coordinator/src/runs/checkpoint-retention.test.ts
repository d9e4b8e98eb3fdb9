import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import type { Logger } from '../log.ts'
import { createRun } from './runs.ts'
import { openTestStore } from '../../../test/support/store.ts'
import { applyCheckpointRetention, keptByRetention, pruneAfterRound, retentionOf } from './checkpoint-retention.ts'
import type { ResolvedRunSpec } from './runs.ts'

const logged: Array<{ msg: string, fields?: Record<string, unknown> }> = []
const log: Logger = {
  info: () => {},
  warn: () => {},
  error: (msg, fields) => { logged.push({ msg, fields }) },
  child: () => log
}

const SPEC = { name: 'retention', model: { preset: 'tiny' }, rounds: 20, recipe: { seqLen: 16, batchSize: 2 } }

let db: Kysely<Database>
let blobs: DiskBlobStore
let cleanup: () => Promise<void>

// One database for the file (a fresh one per test costs seconds of migrations); each test makes its own runs.
beforeAll(async () => {
  const store = await openTestStore('retention')
  db = store.db
  blobs = store.blobs
  cleanup = store.close
})
afterAll(async () => { await cleanup() })

/** What closing a round leaves behind: a checkpoint and a momentum blob, committed as the run's latest. */
async function closeRound (runId: string, round: number): Promise<{ checkpoint: string, optimizer: string }> {
  const checkpoint = await storeBlob(db, blobs, randomBytes(2048), 'checkpoint', { runId, round })
  const optimizer = await storeBlob(db, blobs, randomBytes(2048), 'optimizer', { runId, round })
  await db.insertInto('checkpoints').values({ sha256: checkpoint, run_id: runId, round, tokens_seen: round * 100, val_loss: 5 - round / 10 }).execute()
  await db.updateTable('runs').set({ current_round: round, latest_checkpoint: checkpoint, outer_state: optimizer }).where('id', '=', runId).execute()
  return { checkpoint, optimizer }
}

async function prunedRounds (runId: string): Promise<number[]> {
  const rows = await db.selectFrom('checkpoints').select('round').where('run_id', '=', runId).where('pruned_at', 'is not', null).orderBy('round').execute()
  return rows.map((r) => r.round)
}

test('the rule keeps round 0 and every Nth; runs from before the setting keep everything', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].filter((r) => keptByRetention(r, 3)), [0, 3, 6])
  assert.deepEqual([0, 1, 2].filter((r) => keptByRetention(r, 1)), [0, 1, 2])
  assert.deepEqual(retentionOf({ retention: { keepEvery: 7 } } as unknown as ResolvedRunSpec), { keepEvery: 7 })
  assert.deepEqual(retentionOf({} as unknown as ResolvedRunSpec), { keepEvery: 1 })
})

test('after each round: round 0, every 3rd and the latest keep their blobs; the rest and old momentum are deleted, rows stay', async () => {
  const { id: runId } = await createRun({ db, blobs }, { ...SPEC, retention: { keepEvery: 3 } })
  const initial = (await db.selectFrom('runs').select('latest_checkpoint').where('id', '=', runId).executeTakeFirstOrThrow()).latest_checkpoint!
  const written = new Map<number, { checkpoint: string, optimizer: string }>()
  for (let round = 1; round <= 7; round++) {
    written.set(round, await closeRound(runId, round))
    await applyCheckpointRetention({ db, blobs, log }, runId)
    // The latest is never pruned, even when the rule alone would drop it.
    assert.equal(await blobs.size(written.get(round)!.checkpoint), 2048, `round ${round}'s checkpoint survives while it is the latest`)
  }
  assert.deepEqual(await prunedRounds(runId), [1, 2, 4, 5])
  for (const [round, { checkpoint }] of written) {
    const kept = [3, 6, 7].includes(round)
    assert.equal(await blobs.size(checkpoint) !== undefined, kept, `round ${round} blob`)
    assert.equal((await db.selectFrom('blobs').select('sha256').where('sha256', '=', checkpoint).executeTakeFirst()) !== undefined, kept, `round ${round} blobs row`)
  }
  assert.ok(await blobs.size(initial) !== undefined, 'round 0 is kept')
  const momentum = await db.selectFrom('blobs').select('sha256').where('kind', '=', 'optimizer').execute()
  assert.deepEqual(momentum.map((m) => m.sha256), [written.get(7)!.optimizer])
  for (const round of [1, 2, 3, 4, 5, 6]) assert.equal(await blobs.size(written.get(round)!.optimizer), undefined, `round ${round} momentum deleted`)
  assert.equal((await db.selectFrom('checkpoints').select('sha256').where('run_id', '=', runId).execute()).length, 8, 'every row stays')

  const again = await applyCheckpointRetention({ db, blobs, log }, runId)
  assert.deepEqual(again, { prunedRounds: [], optimizerStates: 0 }, 'a second sweep finds nothing to do')
})

test('what an open round, another run or a resumed close still needs is spared; an interrupted sweep is finished', async () => {
  const { id: runId } = await createRun({ db, blobs }, { ...SPEC, retention: { keepEvery: 5 } })
  const { id: otherRun } = await createRun({ db, blobs }, { ...SPEC, name: 'other', seed: 2 })
  const r1 = await closeRound(runId, 1)
  const r2 = await closeRound(runId, 2)
  // An open round based on round 1 (as after a restart mid-round), and another run pointing at round 2's bytes.
  await db.insertInto('rounds').values({ run_id: runId, number: 3, status: 'open', base_checkpoint: r1.checkpoint, deadline_at: new Date(Date.now() + 60_000) }).execute()
  await db.updateTable('runs').set({ latest_checkpoint: r2.checkpoint }).where('id', '=', otherRun).execute()
  const r3 = await closeRound(runId, 3)
  await applyCheckpointRetention({ db, blobs, log }, runId)
  assert.deepEqual(await prunedRounds(runId), [], 'in use elsewhere: nothing pruned yet')
  assert.ok(await blobs.size(r1.checkpoint) !== undefined && await blobs.size(r2.checkpoint) !== undefined)

  await db.updateTable('rounds').set({ status: 'closed' }).where('run_id', '=', runId).execute()
  await db.updateTable('runs').set({ latest_checkpoint: null }).where('id', '=', otherRun).execute()
  // A close that crashed before its commit left a checkpoint blob no row points to.
  const orphan = await storeBlob(db, blobs, randomBytes(2048), 'checkpoint', { runId, round: 4 })
  // A sweep that crashed between marking round 3 pruned and deleting it.
  await closeRound(runId, 4)
  await db.updateTable('checkpoints').set({ pruned_at: new Date() }).where('sha256', '=', r3.checkpoint).execute()
  await applyCheckpointRetention({ db, blobs, log }, runId)
  assert.deepEqual(await prunedRounds(runId), [1, 2, 3])
  for (const sha of [r1.checkpoint, r2.checkpoint, r3.checkpoint, orphan]) {
    assert.equal(await blobs.size(sha), undefined)
    assert.equal(await db.selectFrom('blobs').select('sha256').where('sha256', '=', sha).executeTakeFirst(), undefined)
  }
})

test('a run created before retention existed keeps every checkpoint; a failing sweep is logged, never thrown', async () => {
  const { id: runId, spec } = await createRun({ db, blobs }, SPEC)
  assert.deepEqual(spec.retention, { keepEvery: 10 }, 'the default')
  const { retention: _dropped, ...older } = spec
  await db.updateTable('runs').set({ spec: JSON.stringify(older) }).where('id', '=', runId).execute()
  for (let round = 1; round <= 3; round++) await closeRound(runId, round)
  await applyCheckpointRetention({ db, blobs, log }, runId)
  assert.deepEqual(await prunedRounds(runId), [])

  await db.updateTable('runs').set({ spec: JSON.stringify({ ...older, retention: { keepEvery: 2 } }) }).where('id', '=', runId).execute()
  await closeRound(runId, 4)
  const failing: BlobStore = { ...blobs, put: blobs.put.bind(blobs), get: blobs.get.bind(blobs), size: blobs.size.bind(blobs), createReadStream: blobs.createReadStream.bind(blobs), delete: async () => { throw new Error('disk on fire') } }
  logged.length = 0
  await pruneAfterRound({ db, blobs: failing, log }, runId)
  assert.equal(logged.length, 1)
  assert.match(logged[0]!.msg, /checkpoint retention failed; the next round retries it/)
  // The next sweep, with a working store, finishes the job.
  await applyCheckpointRetention({ db, blobs, log }, runId)
  assert.deepEqual(await prunedRounds(runId), [1, 3])
  for (const sha of (await db.selectFrom('checkpoints').select('sha256').where('pruned_at', 'is not', null).execute()).map((r) => r.sha256)) {
    assert.equal(await blobs.size(sha), undefined)
  }
})

test('runs with the same model and seed each keep a round-0 row; weights another run keeps are not deleted', async () => {
  const { id: a } = await createRun({ db, blobs }, { ...SPEC, name: 'twin a', seed: 7, retention: { keepEvery: 2 } })
  const { id: b } = await createRun({ db, blobs }, { ...SPEC, name: 'twin b', seed: 7, retention: { keepEvery: 1 } })
  const initial = await db.selectFrom('checkpoints').select(['run_id', 'sha256']).where('round', '=', 0).where('run_id', 'in', [a, b]).execute()
  assert.equal(initial.length, 2, 'a round-0 row for each run')
  assert.equal(initial[0]!.sha256, initial[1]!.sha256, 'over the same weights')

  // Both runs reach the same weights at round 1 (deterministic twins); run a's setting drops round 1, run b's keeps it.
  const shared = await closeRound(a, 1)
  await db.insertInto('checkpoints').values({ sha256: shared.checkpoint, run_id: b, round: 1, tokens_seen: 100, val_loss: 4.9 }).execute()
  await closeRound(a, 2)
  await applyCheckpointRetention({ db, blobs, log }, a)
  assert.deepEqual(await prunedRounds(a), [1], 'run a marks its round 1 pruned')
  assert.deepEqual(await prunedRounds(b), [], 'run b\'s row is untouched')
  assert.equal(await blobs.size(shared.checkpoint), 2048, 'the weights stay: run b keeps them')

  // Once run b lets go too, the next sweep deletes them.
  await db.updateTable('checkpoints').set({ pruned_at: new Date() }).where('run_id', '=', b).where('round', '=', 1).execute()
  await applyCheckpointRetention({ db, blobs, log }, a)
  assert.equal(await blobs.size(shared.checkpoint), undefined)
})

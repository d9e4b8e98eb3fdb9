import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import { createRun } from '../runs/runs.ts'
import { openTestStore } from '../../../test/support/store.ts'
import { CHECKPOINT_PAGE_MAX, FolderCache, checkpointFolder, runCheckpointFolders } from './checkpoint-folder.ts'
import { listRunCheckpoints } from './run-checkpoints.ts'

let db: Kysely<Database>
let blobs: DiskBlobStore
let cleanup: () => Promise<void>

beforeAll(async () => {
  const store = await openTestStore('folders')
  db = store.db
  blobs = store.blobs
  cleanup = store.close
})
afterAll(async () => { await cleanup() })

const readme = (f: { files: Array<{ name: string, bytes?: Uint8Array }> }): string =>
  new TextDecoder().decode(f.files.find((x) => x.name === 'README.md')!.bytes)

test('a folder is built once and reused until its checkpoint row or its run\'s ledger changes', async () => {
  const { id: runId } = await createRun({ db, blobs }, { name: 'cached folders', model: { preset: 'tiny' }, rounds: 5, recipe: { seqLen: 16, batchSize: 2 } })
  const sha = await storeBlob(db, blobs, randomBytes(4096), 'checkpoint', { runId, round: 1 })
  await db.insertInto('checkpoints').values({ sha256: sha, run_id: runId, round: 1, tokens_seen: 640, val_loss: 4.5 }).execute()
  const cache = new FolderCache()
  const deps = { db, blobs, folderCache: cache }

  const first = await checkpointFolder(deps, sha)
  const again = await checkpointFolder(deps, sha)
  assert.ok(first !== undefined)
  assert.equal(again, first, 'the second request gets the folder built for the first')
  assert.equal(cache.builds, 1)
  // Listing the run builds its other folder (round 0) and reuses this one.
  const listed = (await runCheckpointFolders(deps, runId))?.folders
  assert.equal(listed?.length, 2)
  assert.equal(listed?.[1], first)
  assert.equal(cache.builds, 2)

  // The initial checkpoint's loss arriving later changes the row: the card is rebuilt with it.
  await db.updateTable('checkpoints').set({ val_loss: 3.25 }).where('sha256', '=', sha).execute()
  const withLoss = await checkpointFolder(deps, sha)
  assert.notEqual(withLoss, first)
  assert.equal(cache.builds, 3)
  assert.match(readme(withLoss!), /3\.25/)
  assert.notEqual(withLoss!.files.find((f) => f.name === 'README.md')!.etag, first.files.find((f) => f.name === 'README.md')!.etag)

  // A new ledger row can change the card's contributors: the run's entry and its folders go stale.
  await db.insertInto('ledger').values({
    run_id: runId, round: 1, peer_id: '12D3KooWLedgerRowForTheCache', tokens: 640, compute_seconds: 12,
    outcome: 'accepted', prev_hash: '0'.repeat(64), hash: '1'.repeat(64)
  }).execute()
  const afterLedger = await checkpointFolder(deps, sha)
  assert.notEqual(afterLedger, withLoss)
  assert.equal(cache.builds, 4)
  assert.match(readme(afterLedger!), /12D3KooWLedgerRowForTheCache|unknown lab/)
  assert.equal(await checkpointFolder(deps, sha), afterLedger, 'and is reused again after')
  assert.equal(cache.builds, 4)
})

test('a long run\'s checkpoints are listed a page at a time: oldest after a round, or the newest; never more than a page', async () => {
  const { id: runId } = await createRun({ db, blobs }, { name: 'paged', model: { preset: 'tiny' }, rounds: 2000, recipe: { seqLen: 16, batchSize: 2 }, retention: { keepEvery: 2 } })
  const rounds = CHECKPOINT_PAGE_MAX + 20
  // Rows only: their weights are not in the store, so no model card is rendered for them.
  await db.insertInto('checkpoints').values(Array.from({ length: rounds }, (_, i) => ({
    sha256: randomBytes(32).toString('hex'), run_id: runId, round: i + 1, tokens_seen: (i + 1) * 10, val_loss: 5, pruned_at: (i + 1) % 2 === 1 ? new Date() : null
  }))).execute()
  const deps = { db, blobs }
  const first = (await runCheckpointFolders(deps, runId))!
  assert.equal(first.folders.length, CHECKPOINT_PAGE_MAX, 'the default page is the most a listing builds')
  assert.deepEqual([first.folders[0]!.round, first.folders.at(-1)!.round, first.more], [0, CHECKPOINT_PAGE_MAX - 1, true])
  const rest = (await runCheckpointFolders(deps, runId, { order: 'oldest', after: first.folders.at(-1)!.round, limit: 10_000 }))!
  assert.deepEqual(rest.folders.map((f) => f.round), Array.from({ length: rounds + 1 - CHECKPOINT_PAGE_MAX }, (_, i) => CHECKPOINT_PAGE_MAX + i), 'the next page starts after the last, and a limit past the most is cut to it')
  assert.equal(rest.more, false)

  const page = await listRunCheckpoints(deps, runId, 5)
  assert.deepEqual(page.checkpoints.map((c) => c.round), [rounds, rounds - 1, rounds - 2, rounds - 3, rounds - 4], 'the run page gets the newest, newest first')
  assert.deepEqual([page.total, page.pruned], [rounds + 1, rounds / 2], 'and the counts of every checkpoint and every pruned one')
  assert.equal((await listRunCheckpoints(deps, runId)).checkpoints.length, 50)
})

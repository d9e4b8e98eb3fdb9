import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import { createRun } from '../runs/runs.ts'
import { openTestStore } from '../../../test/support/store.ts'
import { FolderCache, checkpointFolder, runCheckpointFolders } from './checkpoint-folder.ts'

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
  const listed = await runCheckpointFolders(deps, runId)
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

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../db/open-database.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { RunSpecError, changeRunStatus, createRun } from './runs.ts'

async function setup () {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-runs-'))
  const database = await openDatabase({ dataDir: 'memory://' })
  const store = { db: database.db, blobs: new DiskBlobStore(join(dir, 'blobs')) }
  return { db: database.db, store, close: database.close }
}

test('a bad spec is refused with one message per bad field, and writes nothing', async () => {
  const { db, store, close } = await setup()
  try {
    const err = await createRun(store, { name: '', recipe: { seqLen: 2, innerSteps: 0 }, codec: 'int4', minNodes: 5, maxNodes: 2 }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof RunSpecError)
    const fields = err.fields.map((f) => f.field).sort()
    assert.deepEqual(fields, ['codec', 'name', 'recipe.innerSteps', 'recipe.seqLen'])
    assert.match(err.message, /recipe\.seqLen: sequence length must be at least 8/)
    const unknownPreset = await createRun(store, { name: 'x', rounds: 1, model: { preset: 'enormous' } }).then(() => undefined, (e: unknown) => e)
    assert.ok(unknownPreset instanceof RunSpecError)
    assert.deepEqual(unknownPreset.fields.map((f) => f.field), ['model'])
    assert.match(unknownPreset.message, /known presets: tiny, small/)
    const noStop = await createRun(store, { name: 'x' }).then(() => undefined, (e: unknown) => e)
    assert.ok(noStop instanceof RunSpecError)
    assert.match(noStop.message, /rounds: say when to stop: a number of rounds or a token target/)
    assert.equal((await db.selectFrom('runs').selectAll().execute()).length, 0)
  } finally {
    await close()
  }
})

test('a run moves draft → running ⇄ paused → completed, and refuses the rest', async () => {
  const { db, store, close } = await setup()
  try {
    const { id, spec } = await createRun(store, { name: 'states', rounds: 2, model: { preset: 'tiny' } })
    assert.equal(spec.paramCount > 0, true)
    assert.ok(spec.trainShards.length > 0)
    const row = await db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
    assert.equal(row.status, 'draft')
    assert.ok(row.latest_checkpoint !== null)
    await assert.rejects(changeRunStatus(db, id, 'pause'), /cannot pause a run that is draft/)
    assert.equal(await changeRunStatus(db, id, 'start'), 'running')
    assert.equal(await changeRunStatus(db, id, 'pause'), 'paused')
    assert.equal(await changeRunStatus(db, id, 'resume'), 'running')
    assert.equal(await changeRunStatus(db, id, 'stop'), 'completed')
    await assert.rejects(changeRunStatus(db, id, 'resume'), /cannot resume a run that is completed/)
  } finally {
    await close()
  }
})

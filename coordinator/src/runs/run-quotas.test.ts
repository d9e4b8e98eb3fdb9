// What createRun refuses or stores for an organizer: the open-run quota holds against creations
// sent at once (counted under a lock where the run is inserted), a config.json is stored as
// parsed (an unknown key nested thousands deep is dropped, not a stack overflow), and the
// evaluation limits apply to what is created.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import { openDatabase } from '../db/open-database.ts'
import type { Database } from '../db/schema.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { CoordinatorError } from '../errors.ts'
import { openTestStore } from '../../../test/support/store.ts'
import { DEFAULT_INSTALL_LIMITS } from './install-limits.ts'
import { RunSpecError, createRun } from './runs.ts'

const SPEC = { name: 'quota', rounds: 1, model: { preset: 'tiny' }, recipe: { seqLen: 16, batchSize: 2 }, evalBatches: 1 }

async function organizer (db: Kysely<Database>): Promise<string> {
  return (await db.insertInto('users').values({ email: `o${Math.random()}@runs.test`, display_name: 'O', password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
}

/** Creations sent at once by one organizer: how many were made, and each refusal's code. */
async function createAtOnce (store: { db: Kysely<Database>, blobs: DiskBlobStore }, owner: string, n: number, maxOpenRuns: number): Promise<{ made: number, refused: string[] }> {
  const limits = { ...DEFAULT_INSTALL_LIMITS, maxOpenRuns }
  const results = await Promise.allSettled(Array.from({ length: n }, async (_, i) => await createRun(store, { ...SPEC, name: `quota ${i}` }, owner, limits)))
  return {
    made: results.filter((r) => r.status === 'fulfilled').length,
    refused: results.flatMap((r) => r.status === 'rejected' ? [r.reason instanceof CoordinatorError ? r.reason.code : String(r.reason)] : [])
  }
}

test('on Postgres, creations sent at once by one organizer stop at the open-run quota', async () => {
  const store = await openTestStore('run-quota')
  try {
    const owner = await organizer(store.db)
    const { made, refused } = await createAtOnce(store, owner, 8, 3)
    assert.equal(made, 3)
    assert.deepEqual(refused, Array(5).fill('ERR_QUOTA_EXCEEDED'))
    const open = await store.db.selectFrom('runs').select('id').where('created_by', '=', owner).execute()
    assert.equal(open.length, 3)
    // Another organizer's room is their own.
    assert.equal((await createAtOnce(store, await organizer(store.db), 2, 3)).made, 2)
  } finally {
    await store.close()
  }
})

test('on PGlite too (one connection, a transaction at a time), the count where the run is inserted holds the quota', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const store = { db: database.db, blobs: new DiskBlobStore(join(await mkdtemp(join(tmpdir(), 'barnraise-run-quota-')), 'blobs')) }
  try {
    const owner = await organizer(store.db)
    const { made, refused } = await createAtOnce(store, owner, 4, 2)
    assert.equal(made, 2)
    assert.deepEqual(refused, ['ERR_QUOTA_EXCEEDED', 'ERR_QUOTA_EXCEEDED'])
  } finally {
    await database.close()
  }
})

test('a config.json is stored as parsed: an unknown key nested 8,000 deep is dropped, not a 500', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const store = { db: database.db, blobs: new DiskBlobStore(join(await mkdtemp(join(tmpdir(), 'barnraise-deep-config-')), 'blobs')) }
  try {
    const tiny = { vocab_size: 256, hidden_size: 64, intermediate_size: 172, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, tie_word_embeddings: true }
    const notes = JSON.parse('['.repeat(8000) + ']'.repeat(8000)) as unknown
    const { id, spec } = await createRun(store, { ...SPEC, model: { config: { ...tiny, notes, architectures: ['LlamaForCausalLM'] } } })
    const stored = (await database.db.selectFrom('runs').select('spec').where('id', '=', id).executeTakeFirstOrThrow()).spec
    assert.deepEqual(stored.model, { config: spec.modelConfig }, 'the model as the coordinator understood it')
    assert.equal('notes' in (stored.model as { config: Record<string, unknown> }).config, false)
    assert.equal(stored.modelConfig.hidden_size, 64)
    // A preset is stored as it was named.
    const preset = await createRun(store, SPEC)
    assert.deepEqual(preset.spec.model, { preset: 'tiny' })
  } finally {
    await database.close()
  }
})

test('a run whose evaluation reads more tokens than the install allows is refused before anything is stored', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const store = { db: database.db, blobs: new DiskBlobStore(join(await mkdtemp(join(tmpdir(), 'barnraise-eval-limit-')), 'blobs')) }
  try {
    // The review's spec: every field within its own limit before.
    const err = await createRun(store, { name: 'eval work', rounds: 1, model: { preset: 'tiny' }, evalBatches: 64, recipe: { batchSize: 4096, seqLen: 8192 } }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof RunSpecError, String(err))
    assert.deepEqual(err.fields.map((f) => f.field), ['recipe.batchSize', 'evalBatches'])
    assert.match(err.message, /--max-eval-tokens/)
    assert.equal((await database.db.selectFrom('runs').select('id').execute()).length, 0)
  } finally {
    await database.close()
  }
})

// Shards an organizer uploaded are theirs to train on, as their datasets are: runs publish their
// shards' hashes, and a hash is not the data.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildShards } from '@barnraise/trainer'
import { openDatabase } from '../db/open-database.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import { DEFAULT_INSTALL_LIMITS } from './install-limits.ts'
import { RunSpecError, createRun } from './runs.ts'

test('another organizer cannot train on shards someone uploaded by naming their hashes, unless they uploaded the same bytes; admins and the operator may', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  const store = { db, blobs: new DiskBlobStore(join(await mkdtemp(join(tmpdir(), 'barnraise-shard-owner-')), 'blobs')) }
  try {
    const person = async (email: string): Promise<string> => (await db.insertInto('users').values({ email, display_name: email, password_hash: 'x', roles: ['organizer'], organization_id: null }).returning('id').executeTakeFirstOrThrow()).id
    const alice = await person('alice@x.test')
    const bob = await person('bob@x.test')
    const shards = buildShards('In the beginning was the word. '.repeat(400), { shardTokens: 4096, validationFraction: 0.1 })
    const upload = async (who: string): Promise<{ train: string[], validation: string }> => ({
      train: await Promise.all(shards.train.map(async (s) => await storeBlob(db, store.blobs, s.bytes, 'shard', { tokens: s.manifest.tokens, vocabSize: 256, uploadedBy: who }))),
      validation: await storeBlob(db, store.blobs, shards.validation.bytes, 'shard', { tokens: shards.validation.manifest.tokens, vocabSize: 256, split: 'validation', uploadedBy: who })
    })
    const hashes = await upload(alice)
    const spec = { name: 'on named shards', rounds: 1, model: { preset: 'tiny' }, dataset: { source: 'shards', ...hashes } }
    const refused = await createRun(store, spec, bob).then(() => undefined, (e: unknown) => e)
    assert.ok(refused instanceof RunSpecError, String(refused))
    assert.match(refused.fields[0]!.message, /is not in this coordinator's blob store/)
    assert.equal((await db.selectFrom('runs').select('id').execute()).length, 0, 'nothing was created')

    await createRun(store, spec, alice)
    await createRun(store, spec, bob, DEFAULT_INSTALL_LIMITS, { anyDataset: true })
    await createRun(store, spec, null)
    // Bob uploads the same text: the bytes are his too now.
    assert.deepEqual(await upload(bob), hashes)
    await createRun(store, spec, bob)
    const meta = (await db.selectFrom('blobs').select('meta').where('sha256', '=', hashes.validation).executeTakeFirstOrThrow()).meta
    assert.equal(meta.uploadedBy, alice, 'the first uploader stays the one the quota counts')
    assert.deepEqual(meta.uploaders, [bob])
    await upload(bob)
    assert.deepEqual((await db.selectFrom('blobs').select('meta').where('sha256', '=', hashes.validation).executeTakeFirstOrThrow()).meta.uploaders, [bob], 'listed once')
  } finally {
    await database.close()
  }
})

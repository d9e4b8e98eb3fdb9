import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { access, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { Coordinator } from '@barnraise/coordinator'
import { BlobCache, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { tempDir } from './support/cluster.ts'

describe('blobs over /barnraise/blob/1.0.0', () => {
  let coordinator: Coordinator
  let libp2p: Libp2p
  let stranger: Libp2p
  const blob = randomBytes(700_000)
  const sha = createHash('sha256').update(blob).digest('hex')
  const other = randomBytes(1000)
  const otherSha = createHash('sha256').update(other).digest('hex')
  beforeAll(async () => {
    coordinator = await Coordinator.start({ dataDir: await tempDir('blob-coord'), httpPort: 0, p2pPort: 0 })
    const db = coordinator.database.db
    for (const bytes of [blob, other]) {
      const stored = await coordinator.blobs.put(bytes)
      await db.insertInto('blobs').values({ sha256: stored, size: bytes.byteLength, kind: 'shard', meta: '{}' }).execute()
    }
    libp2p = await createAgentHost(await generateKeyPair('Ed25519'))
    stranger = await createAgentHost(await generateKeyPair('Ed25519'))
    // An enrolled node whose one work unit reads `blob` (and not `other`).
    const org = await db.insertInto('organizations').values({ name: 'Blob Lab' }).returning('id').executeTakeFirstOrThrow()
    const node = await db.insertInto('nodes').values({
      peer_id: libp2p.peerId.toString(), organization_id: org.id, name: 'blob node', hardware: '{}', agent_version: '0',
      enrolled_with_token_id: null, first_seen_at: new Date(), last_seen_at: new Date()
    }).returning('id').executeTakeFirstOrThrow()
    const run = await db.insertInto('runs').values({ name: 'blob run', spec: '{}', failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null })
      .returning('id').executeTakeFirstOrThrow()
    const round = await db.insertInto('rounds').values({ run_id: run.id, number: 1, status: 'closed', base_checkpoint: '0'.repeat(64), deadline_at: new Date(), closed_at: null, close_reason: null, result_checkpoint: null, train_loss: null, val_loss: null })
      .returning('id').executeTakeFirstOrThrow()
    await db.insertInto('assignments').values({
      run_id: run.id, round_id: round.id, node_id: node.id, ranges: JSON.stringify([{ shard: sha, start: 0, end: 10 }]), tokens: 10, status: 'expired', report_blob: null, resolved_at: null
    }).execute()
  })
  afterAll(async () => {
    await libp2p.stop()
    await stranger.stop()
    await coordinator.stop()
  })

  const cacheIn = async (dir: string, host = libp2p): Promise<BlobCache> => new BlobCache(dir, host, parseCoordinatorAddress(coordinator.multiaddrs[0]!))

  test('a fetch streams in chunks, verifies and caches', async () => {
    const dir = await tempDir('blob-agent')
    const got = await (await cacheIn(dir)).get(sha)
    assert.deepEqual(Buffer.from(got), blob)
    assert.deepEqual(await readdir(join(dir, 'blobs')), [sha])
  })

  test('an interrupted download resumes from the bytes already on disk', async () => {
    const dir = await tempDir('blob-resume')
    await mkdir(join(dir, 'blobs'), { recursive: true })
    await writeFile(join(dir, 'blobs', `${sha}.part`), blob.subarray(0, 300_001))
    const got = await (await cacheIn(dir)).get(sha)
    assert.deepEqual(Buffer.from(got), blob)
  })

  test('a corrupt partial file fails verification, is discarded, and the next fetch succeeds', async () => {
    const dir = await tempDir('blob-corrupt')
    await mkdir(join(dir, 'blobs'), { recursive: true })
    const bad = Buffer.from(blob.subarray(0, 1000))
    bad[10] = bad[10]! ^ 0xff
    await writeFile(join(dir, 'blobs', `${sha}.part`), bad)
    const cache = await cacheIn(dir)
    await assert.rejects(cache.get(sha), /failed verification/)
    assert.deepEqual(Buffer.from(await cache.get(sha)), blob)
  })

  test('unknown blobs and blobs none of its units name are refused alike', async () => {
    const cache = await cacheIn(await tempDir('blob-unknown'))
    await assert.rejects(cache.get('1'.repeat(64)), (err: unknown) => err instanceof RefusedError && err.code === 'ERR_NOT_ASSIGNED')
    await assert.rejects(cache.get(otherSha), (err: unknown) => err instanceof RefusedError && err.code === 'ERR_NOT_ASSIGNED')
  })

  test('a round\'s aggregate update goes only to a node whose open unit trains from that round\'s checkpoint, and only while the unit is open', async () => {
    const db = coordinator.database.db
    const aggregate = randomBytes(5000)
    const aggregateSha = await coordinator.blobs.put(aggregate)
    await db.insertInto('blobs').values({ sha256: aggregateSha, size: aggregate.byteLength, kind: 'update', meta: '{}' }).execute()
    const node = await db.selectFrom('nodes').select('id').where('peer_id', '=', libp2p.peerId.toString()).executeTakeFirstOrThrow()
    const run = await db.insertInto('runs').values({ name: 'aggregate run', spec: '{}', failure_reason: null, created_by: null, updated_at: new Date(), latest_checkpoint: null, outer_state: null })
      .returning('id').executeTakeFirstOrThrow()
    const made = 'a'.repeat(64)
    await db.insertInto('rounds').values({ run_id: run.id, number: 1, status: 'closed', base_checkpoint: '0'.repeat(64), deadline_at: new Date(), result_checkpoint: made, update_blob: aggregateSha }).execute()
    const open = await db.insertInto('rounds').values({ run_id: run.id, number: 2, status: 'open', base_checkpoint: made, deadline_at: new Date(Date.now() + 60_000) })
      .returning('id').executeTakeFirstOrThrow()
    const unit = await db.insertInto('assignments').values({ run_id: run.id, round_id: open.id, node_id: node.id, ranges: JSON.stringify([{ shard: otherSha, start: 0, end: 10 }]), tokens: 10, status: 'assigned' })
      .returning('id').executeTakeFirstOrThrow()
    // Another node's round: its aggregate is not this node's to read.
    const elsewhere = randomBytes(5000)
    const elsewhereSha = await coordinator.blobs.put(elsewhere)
    await db.insertInto('blobs').values({ sha256: elsewhereSha, size: elsewhere.byteLength, kind: 'update', meta: '{}' }).execute()
    await db.insertInto('rounds').values({ run_id: run.id, number: 0, status: 'closed', base_checkpoint: '0'.repeat(64), deadline_at: new Date(), result_checkpoint: 'b'.repeat(64), update_blob: elsewhereSha }).execute()

    assert.deepEqual(Buffer.from(await (await cacheIn(await tempDir('blob-aggregate'))).get(aggregateSha)), aggregate)
    await assert.rejects((await cacheIn(await tempDir('blob-aggregate-other'))).get(elsewhereSha), (err: unknown) => err instanceof RefusedError && err.code === 'ERR_NOT_ASSIGNED')
    await db.updateTable('assignments').set({ status: 'accepted' }).where('id', '=', unit.id).execute()
    await assert.rejects((await cacheIn(await tempDir('blob-aggregate-late'))).get(aggregateSha), (err: unknown) => err instanceof RefusedError && err.code === 'ERR_NOT_ASSIGNED')
  })

  test('a peer that is not an enrolled node gets nothing, not even a blob that exists', async () => {
    const cache = await cacheIn(await tempDir('blob-stranger'), stranger)
    await assert.rejects(cache.get(sha), (err: unknown) => err instanceof RefusedError && err.code === 'ERR_NOT_ENROLLED')
  })

  test('a revoked node gets nothing: it is turned away before it can ask', async () => {
    await coordinator.database.db.updateTable('nodes').set({ revoked_at: new Date() }).where('peer_id', '=', libp2p.peerId.toString()).execute()
    coordinator.presence.disconnect(libp2p.peerId.toString())
    const dir = await tempDir('blob-revoked')
    await assert.rejects((await cacheIn(dir)).get(sha), (err: unknown) => !(err instanceof RefusedError))
    await assert.rejects(access(join(dir, 'blobs', sha)), 'no bytes reached its disk')
  })
})

import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p } from '@libp2p/interface'
import { Coordinator } from '@barnraise/coordinator'
import { BlobCache, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { tempDir } from './support/cluster.ts'

describe('blobs over /barnraise/blob/1.0.0', () => {
  let coordinator: Coordinator
  let libp2p: Libp2p
  const blob = randomBytes(700_000)
  const sha = createHash('sha256').update(blob).digest('hex')
  beforeAll(async () => {
    coordinator = await Coordinator.start({ dataDir: await tempDir('blob-coord'), httpPort: 0, p2pPort: 0 })
    const stored = await coordinator.blobs.put(blob)
    await coordinator.database.db.insertInto('blobs').values({ sha256: stored, size: blob.byteLength, kind: 'shard', meta: '{}' }).execute()
    libp2p = await createAgentHost(await generateKeyPair('Ed25519'))
  })
  afterAll(async () => {
    await libp2p.stop()
    await coordinator.stop()
  })

  const cacheIn = async (dir: string): Promise<BlobCache> => new BlobCache(dir, libp2p, parseCoordinatorAddress(coordinator.multiaddrs[0]!))

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

  test('unknown blobs and reports are refused by name', async () => {
    const cache = await cacheIn(await tempDir('blob-unknown'))
    await assert.rejects(cache.get('0'.repeat(64)), (err: unknown) => err instanceof RefusedError && /no blob/.test(err.message))
  })
})

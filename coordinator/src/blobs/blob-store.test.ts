import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DiskBlobStore, byteLengthOf, isBlobSource, sha256Hex, sha256HexInSlices } from './blob-store.ts'


/** Runs `fn` with a fresh folder for a store, removed afterwards whatever happens. */
async function inStoreDir (fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-blob-store-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

test('bytes stored as parts end to end are the blob of the bytes joined: one sha256, one file, no temp left', async () => {
  await inStoreDir(async (dir) => {
    const store = new DiskBlobStore(dir)
    // Past a hashing slice (16 MiB), with a part that ends inside one and an empty part.
    const big = new Uint8Array(17 * 1024 * 1024 + 3).map((_, i) => (i * 31) & 0xff)
    const parts = [new Uint8Array([1, 2, 3]), big.subarray(0, 5), new Uint8Array(0), big.subarray(5)]
    const whole = new Uint8Array(byteLengthOf(parts))
    let at = 0
    for (const p of parts) { whole.set(p, at); at += p.byteLength }
    assert.equal(byteLengthOf(parts), 3 + big.byteLength)
    assert.equal(await sha256HexInSlices(parts), sha256Hex(whole))
    const sha = await store.put(parts)
    assert.equal(sha, sha256Hex(whole))
    assert.deepEqual(await store.get(sha), whole)
    assert.equal(await store.put(whole), sha, 'the same blob, whole or in parts')
    assert.deepEqual(await readdir(join(dir, sha.slice(0, 2))), [sha])
    assert.deepEqual(new Uint8Array(await readFile(join(dir, sha.slice(0, 2), sha))), whole)
  })
})

test('bytes from a source are hashed and written as they come; a source that fails leaves nothing behind', async () => {
  await inStoreDir(async (dir) => {
    const store = new DiskBlobStore(dir)
    const chunks = [new Uint8Array([9, 8, 7]), new Uint8Array(0), new Uint8Array(1000).fill(5)]
    const whole = new Uint8Array(byteLengthOf(chunks))
    whole.set(chunks[0]!)
    whole.set(chunks[2]!, 3)
    async function * source (fail: boolean): AsyncGenerator<Uint8Array> {
      for (const c of chunks) yield c
      if (fail) throw new Error('the disk it was read from went away')
    }
    assert.ok(isBlobSource(source(false)) && !isBlobSource(whole) && !isBlobSource(chunks))
    const sha = await store.put(source(false))
    assert.equal(sha, sha256Hex(whole))
    assert.deepEqual(await store.get(sha), whole)
    assert.equal(await store.put(source(false)), sha, 'stored again: the same file')
    await assert.rejects(store.put(source(true)), /went away/)
    assert.deepEqual((await readdir(dir)).sort(), [sha.slice(0, 2)], 'no temp file left')
    assert.deepEqual(await readdir(join(dir, sha.slice(0, 2))), [sha])
  })
})

test('a write that fails at its end (the rename, as on a full disk) leaves no temp file, whole, in parts or from a source', async () => {
  await inStoreDir(async (dir) => {
    const store = new DiskBlobStore(dir)
    const bytes = new Uint8Array(4096).map((_, i) => i & 0xff)
    const sha = sha256Hex(bytes)
    // A folder where the blob's file goes: renaming the temp file onto it fails.
    await mkdir(join(dir, sha.slice(0, 2), sha), { recursive: true })
    async function * source (): AsyncGenerator<Uint8Array> { yield bytes.subarray(0, 100); yield bytes.subarray(100) }
    for (const put of [async () => await store.put(bytes), async () => await store.put([bytes.subarray(0, 10), bytes.subarray(10)]), async () => await store.put(source())]) {
      await assert.rejects(put())
      assert.deepEqual(await readdir(dir), [sha.slice(0, 2)], 'no incoming temp file')
      assert.deepEqual(await readdir(join(dir, sha.slice(0, 2))), [sha], 'no temp file beside the blob')
    }
  })
})

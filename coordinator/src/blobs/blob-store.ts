import { createHash, randomBytes } from 'node:crypto'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { createReadStream } from 'node:fs'
import type { ReadStream } from 'node:fs'
import { mkdir, rename, stat, writeFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { readWholeFile, sha256Hex } from '@barnraise/protocol'

/** Content-addressed bytes: the key is the sha256 of the value. S3 could implement this too. */
export interface BlobStore {
  put: (bytes: Uint8Array) => Promise<string>
  get: (sha256: string) => Promise<Uint8Array>
  size: (sha256: string) => Promise<number | undefined>
  /** Reads bytes `start` to `end` (inclusive; the end of the blob when absent). */
  createReadStream: (sha256: string, start?: number, end?: number) => ReadStream
  delete: (sha256: string) => Promise<void>
}

const SHA256 = /^[0-9a-f]{64}$/

/** sha256 of bytes, lowercase hex, of any size (protocol's). */
export { sha256Hex }

/** Bytes hashed between turns of the event loop: 16 MiB is about 12 ms of sha256 here. */
const HASH_SLICE_BYTES = 16 * 1024 * 1024

/**
 * sha256 of bytes, lowercase hex, hashed a slice at a time with the event loop let through in
 * between, so a checkpoint or shard of hundreds of MiB does not stall every other request.
 * The caller must not change `bytes` until it resolves.
 */
export async function sha256HexInSlices (bytes: Uint8Array): Promise<string> {
  if (bytes.byteLength <= HASH_SLICE_BYTES) return sha256Hex(bytes)
  const hash = createHash('sha256')
  for (let at = 0; at < bytes.byteLength; at += HASH_SLICE_BYTES) {
    hash.update(bytes.subarray(at, at + HASH_SLICE_BYTES))
    await nextTurn()
  }
  return hash.digest('hex')
}

/** Blobs as files under `root/ab/abcdef…`, written to a temp name and renamed so readers never see half a blob. */
export class DiskBlobStore implements BlobStore {
  readonly #root: string

  constructor (root: string) {
    this.#root = root
  }

  #path (sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256.slice(0, 80)}`)
    return join(this.#root, sha256.slice(0, 2), sha256)
  }

  async put (bytes: Uint8Array): Promise<string> {
    const sha = await sha256HexInSlices(bytes)
    const path = this.#path(sha)
    if (await this.size(sha) === bytes.byteLength) return sha
    await mkdir(join(this.#root, sha.slice(0, 2)), { recursive: true })
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
    await writeFile(tmp, bytes)
    await rename(tmp, path)
    return sha
  }

  async get (sha256: string): Promise<Uint8Array> {
    // Past fs.readFile's 2 GiB: a 1B model's checkpoint is 4.4 GB.
    return await readWholeFile(this.#path(sha256))
  }

  async size (sha256: string): Promise<number | undefined> {
    const info = await stat(this.#path(sha256)).catch(() => undefined)
    return info?.isFile() === true ? info.size : undefined
  }

  createReadStream (sha256: string, start = 0, end?: number): ReadStream {
    return createReadStream(this.#path(sha256), { start, end, highWaterMark: 256 * 1024 })
  }

  async delete (sha256: string): Promise<void> {
    await rm(this.#path(sha256), { force: true })
  }
}

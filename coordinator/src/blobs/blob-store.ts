import { createHash, randomBytes } from 'node:crypto'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { createReadStream } from 'node:fs'
import type { ReadStream } from 'node:fs'
import { mkdir, open, rename, stat, writeFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { readWholeFile, sha256Hex } from '@barnraise/protocol'

/**
 * A blob's bytes: whole, as parts end to end (a checkpoint's header and its weights' own memory:
 * no model-sized copy), or as a source that makes them as they are read (never held whole).
 */
export type BlobBytes = Uint8Array | readonly Uint8Array[] | AsyncIterable<Uint8Array>

declare const computed: unique symbol

/**
 * A sha256 this process computed over bytes (`sha256HexInSlices`), never one a request or
 * manifest claims: a store given it with those bytes takes it instead of hashing them again.
 */
export type ComputedSha256 = string & { readonly [computed]: true }

/** Content-addressed bytes: the key is the sha256 of the value. S3 could implement this too. */
export interface BlobStore {
  /** Stores bytes (read to their end, a source included) and returns their sha256; `sha256`, of bytes in memory, saves hashing them again. */
  put: (bytes: BlobBytes, sha256?: ComputedSha256) => Promise<string>
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
export async function sha256HexInSlices (bytes: Uint8Array | readonly Uint8Array[]): Promise<ComputedSha256> {
  const parts = bytes instanceof Uint8Array ? [bytes] : bytes
  if (parts.length === 1 && parts[0]!.byteLength <= HASH_SLICE_BYTES) return sha256Hex(parts[0]!) as ComputedSha256
  const hash = createHash('sha256')
  let sinceTurn = 0
  for (const part of parts) {
    for (let at = 0; at < part.byteLength; at += HASH_SLICE_BYTES) {
      const slice = part.subarray(at, at + HASH_SLICE_BYTES)
      hash.update(slice)
      sinceTurn += slice.byteLength
      if (sinceTurn >= HASH_SLICE_BYTES) { sinceTurn = 0; await nextTurn() }
    }
  }
  return hash.digest('hex') as ComputedSha256
}

/** How many bytes `bytes` are, whole or in parts. */
export function byteLengthOf (bytes: Uint8Array | readonly Uint8Array[]): number {
  return bytes instanceof Uint8Array ? bytes.byteLength : bytes.reduce((n, part) => n + part.byteLength, 0)
}

/** Whether `bytes` is a source read as it makes them (not bytes in memory). */
export function isBlobSource (bytes: BlobBytes): bytes is AsyncIterable<Uint8Array> {
  return !(bytes instanceof Uint8Array) && !Array.isArray(bytes)
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

  async put (bytes: BlobBytes, sha256?: ComputedSha256): Promise<string> {
    if (isBlobSource(bytes)) return await this.#putSource(bytes)
    const sha = sha256 ?? await sha256HexInSlices(bytes)
    const path = this.#path(sha)
    if (await this.size(sha) === byteLengthOf(bytes)) return sha
    await mkdir(join(this.#root, sha.slice(0, 2)), { recursive: true })
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
    try {
      // Parts are written one after another (writeFile takes an iterable), never joined in memory.
      await writeFile(tmp, bytes)
      await rename(tmp, path)
    } catch (err) {
      // A full disk must not also keep a partial checkpoint of gigabytes nothing would sweep.
      await rm(tmp, { force: true })
      throw err
    }
    return sha
  }

  /** A source's bytes, hashed and written to a temp file as they come, then named by their sha256. */
  async #putSource (source: AsyncIterable<Uint8Array>): Promise<string> {
    await mkdir(this.#root, { recursive: true })
    const tmp = join(this.#root, `incoming.${randomBytes(8).toString('hex')}.tmp`)
    let named = false
    try {
      const hash = createHash('sha256')
      let size = 0
      const file = await open(tmp, 'wx')
      try {
        for await (const chunk of source) {
          // hash.update stops at 2 GiB a call.
          for (let at = 0; at < chunk.byteLength; at += HASH_SLICE_BYTES) hash.update(chunk.subarray(at, at + HASH_SLICE_BYTES))
          for (let at = 0; at < chunk.byteLength;) at += (await file.write(chunk, at, chunk.byteLength - at)).bytesWritten
          size += chunk.byteLength
        }
      } finally {
        await file.close()
      }
      const sha = hash.digest('hex')
      const path = this.#path(sha)
      if (await this.size(sha) === size) return sha
      await mkdir(join(this.#root, sha.slice(0, 2)), { recursive: true })
      await rename(tmp, path)
      named = true
      return sha
    } finally {
      // Whatever stopped it (the source, a full disk, the rename) or a copy already stored: the temp file goes.
      if (!named) await rm(tmp, { force: true })
    }
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

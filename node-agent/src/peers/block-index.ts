import { open } from 'node:fs/promises'
import { BLOB_BLOCK_BYTES } from '@barnraise/protocol'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { create as createDigest } from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Blockstore, InputPair, Pair } from 'interface-blockstore'

/** The CID Bitswap exchanges for a block: CIDv1, raw codec, the block's sha256. */
export function blockCid (digest: Uint8Array): CID {
  return CID.createV1(raw.code, createDigest(sha256.code, digest))
}

const keyOf = (cid: CID): string => Buffer.from(cid.multihash.bytes).toString('base64')

interface HeldBlob {
  /** Where the bytes are now: the part file while downloading, the cache file after. */
  path: string
  size: number
  present: Uint8Array
}

interface BlockPlace {
  blob: HeldBlob
  index: number
}

/**
 * The agent's blocks, as Bitswap sees them: a blockstore that stores nothing itself but knows
 * which byte range of which blob file each block CID is. Only blocks this node has verified are
 * offered, so a peer asking for a block it was never given learns nothing but "don't have".
 */
export class BlockIndex implements Blockstore {
  readonly #blocks = new Map<string, BlockPlace>()
  readonly #blobs = new Map<string, { held: HeldBlob, keys: string[] }>()

  /** Offers a blob's blocks (its digests, 32 bytes a block) as they arrive in the file at `path`. */
  register (sha: string, digests: Uint8Array, size: number, path: string, present?: Uint8Array): { held: HeldBlob, cids: CID[] } {
    this.forget(sha)
    const count = digests.byteLength / 32
    const held: HeldBlob = { path, size, present: present ?? new Uint8Array(count).fill(1) }
    const cids: CID[] = []
    const keys: string[] = []
    for (let i = 0; i < count; i++) {
      const cid = blockCid(digests.subarray(i * 32, (i + 1) * 32))
      cids.push(cid)
      const key = keyOf(cid)
      keys.push(key)
      // Two blobs can share a block (an all-zero one); the first stays the source.
      if (!this.#blocks.has(key)) this.#blocks.set(key, { blob: held, index: i })
    }
    this.#blobs.set(sha, { held, keys })
    return { held, cids }
  }

  /** Whether the blob's blocks are offered. */
  holds (sha: string): boolean {
    return this.#blobs.has(sha)
  }

  /** Stops offering a blob's blocks (it was dropped from the cache). */
  forget (sha: string): void {
    const entry = this.#blobs.get(sha)
    if (entry === undefined) return
    for (const key of entry.keys) if (this.#blocks.get(key)?.blob === entry.held) this.#blocks.delete(key)
    this.#blobs.delete(sha)
  }

  /** Points a blob's blocks at its new file (the part file was renamed into the cache). */
  moved (sha: string, path: string): void {
    const entry = this.#blobs.get(sha)
    if (entry !== undefined) entry.held.path = path
  }

  has (cid: CID): boolean {
    const place = this.#blocks.get(keyOf(cid))
    return place !== undefined && place.blob.present[place.index] === 1
  }

  async * get (cid: CID): AsyncGenerator<Uint8Array> {
    const place = this.#blocks.get(keyOf(cid))
    if (place === undefined || place.blob.present[place.index] !== 1) throw Object.assign(new Error('block not held'), { name: 'NotFoundError' })
    yield await readBlock(place.blob, place.index)
  }

  // Bitswap only reads; blocks enter through register() once verified.
  put (cid: CID): CID { return cid }
  async * putMany (source: Iterable<InputPair> | AsyncIterable<InputPair>): AsyncGenerator<CID> {
    for await (const pair of source) yield pair.cid
  }

  async * getMany (source: Iterable<CID> | AsyncIterable<CID>): AsyncGenerator<Pair> {
    for await (const cid of source) yield { cid, bytes: this.get(cid) }
  }

  delete (): void {}
  async * deleteMany (source: Iterable<CID> | AsyncIterable<CID>): AsyncGenerator<CID> {
    for await (const cid of source) yield cid
  }

  async * getAll (): AsyncGenerator<Pair> {}
}

/** One block of a held blob, read from wherever its file is now. */
async function readBlock (blob: HeldBlob, index: number): Promise<Uint8Array> {
  const start = index * BLOB_BLOCK_BYTES
  const length = Math.min(BLOB_BLOCK_BYTES, blob.size - start)
  for (let attempt = 0; ; attempt++) {
    const path = blob.path
    try {
      const file = await open(path, 'r')
      try {
        const bytes = new Uint8Array(length)
        const { bytesRead } = await file.read(bytes, 0, length, start)
        if (bytesRead !== length) throw new Error(`block ${index} of ${path} is short`)
        return bytes
      } finally {
        await file.close()
      }
    } catch (err) {
      // The part file may have just been renamed into the cache; its new path is set by then.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      if (attempt === 0 && blob.path !== path) continue
      // Renamed a moment ago, or dropped: Bitswap answers "don't have" for a NotFoundError.
      throw Object.assign(new Error('block not held'), { name: 'NotFoundError' })
    }
  }
}

import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { BLOB_BLOCK_BYTES, blockCount } from '@barnraise/protocol'
import type { BlobStore } from './blob-store.ts'

/** How many blobs' block lists stay in memory (32 bytes per MiB of blob: a 1 GB checkpoint's list is 32 KiB). */
const KEPT = 64

/**
 * The sha256 of each BLOB_BLOCK_BYTES block of a stored blob, for peer exchange. Computed by
 * streaming the blob once on first ask (concurrent askers share the work) and kept for the
 * most recently asked blobs; blobs never change, so an entry never goes stale.
 */
export class BlockDigests {
  readonly #blobs: BlobStore
  readonly #kept = new Map<string, Promise<Uint8Array>>()

  constructor (blobs: BlobStore) {
    this.#blobs = blobs
  }

  /** The blob's block digests, concatenated; rejects when the blob is not stored. */
  async of (sha256: string): Promise<Uint8Array> {
    let entry = this.#kept.get(sha256)
    if (entry !== undefined) {
      // Most recently used last, so the oldest is the first key.
      this.#kept.delete(sha256)
      this.#kept.set(sha256, entry)
      return await entry
    }
    entry = this.#compute(sha256)
    this.#kept.set(sha256, entry)
    entry.catch(() => { this.#kept.delete(sha256) })
    while (this.#kept.size > KEPT) this.#kept.delete(this.#kept.keys().next().value as string)
    return await entry
  }

  async #compute (sha256: string): Promise<Uint8Array> {
    const size = await this.#blobs.size(sha256)
    if (size === undefined) throw new Error(`no blob ${sha256} here`)
    const out = new Uint8Array(blockCount(size) * 32)
    let block = 0
    let filled = 0
    let hash: Hash = createHash('sha256')
    for await (const chunk of this.#blobs.createReadStream(sha256)) {
      let bytes = chunk as Buffer
      while (bytes.byteLength > 0) {
        const take = Math.min(bytes.byteLength, BLOB_BLOCK_BYTES - filled)
        hash.update(bytes.subarray(0, take))
        filled += take
        bytes = bytes.subarray(take)
        if (filled === BLOB_BLOCK_BYTES) {
          out.set(hash.digest(), block * 32)
          block++
          filled = 0
          hash = createHash('sha256')
        }
      }
    }
    // The last, short block (or the one empty block of an empty blob).
    if (filled > 0 || block === 0) out.set(hash.digest(), block * 32)
    return out
  }
}

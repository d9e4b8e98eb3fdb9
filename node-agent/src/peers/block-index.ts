import { open } from 'node:fs/promises'
import { BLOB_BLOCK_BYTES } from '@barnraise/protocol'

/** A blob this agent offers to its peers: where its bytes are and which blocks are verified. */
export interface HeldBlob {
  /** Where the bytes are now: the part file while downloading, the cache file after. */
  path: string
  size: number
  /** One byte a block: 1 once the block is verified and written. */
  present: Uint8Array
}

/**
 * The blobs this agent offers to its peers, by sha256. It stores nothing itself: each entry
 * says which file holds the blob and which blocks of it are verified, so a peer is only ever
 * sent a block this agent has checked against its digest.
 */
export class BlockIndex {
  readonly #blobs = new Map<string, HeldBlob>()

  /** Offers a blob (all of it verified unless `present` says otherwise). */
  register (sha: string, size: number, count: number, path: string, present?: Uint8Array): HeldBlob {
    const held: HeldBlob = { path, size, present: present ?? new Uint8Array(count).fill(1) }
    this.#blobs.set(sha, held)
    return held
  }

  /** Whether the blob is offered. */
  holds (sha: string): boolean {
    return this.#blobs.has(sha)
  }

  /** The offered blob, if any. */
  get (sha: string): HeldBlob | undefined {
    return this.#blobs.get(sha)
  }

  /** Stops offering a blob (it was dropped from the cache). */
  forget (sha: string): void {
    this.#blobs.delete(sha)
  }

  /** Points a blob at its new file (the part file was renamed into the cache). */
  moved (sha: string, path: string): void {
    const held = this.#blobs.get(sha)
    if (held !== undefined) held.path = path
  }

  /** One verified block, read from wherever its file is now; undefined when it is not held. */
  async readBlock (sha: string, index: number): Promise<Uint8Array | undefined> {
    const held = this.#blobs.get(sha)
    if (held === undefined || held.present[index] !== 1) return undefined
    const start = index * BLOB_BLOCK_BYTES
    const length = Math.min(BLOB_BLOCK_BYTES, held.size - start)
    for (let attempt = 0; attempt < 2; attempt++) {
      const path = held.path
      try {
        const file = await open(path, 'r')
        try {
          const bytes = new Uint8Array(length)
          const { bytesRead } = await file.read(bytes, 0, length, start)
          return bytesRead === length ? bytes : undefined
        } finally {
          await file.close()
        }
      } catch (err) {
        // The part file may have been renamed into the cache a moment ago (its new path is set
        // right after), or the blob dropped: either way this read has nothing to give.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        if (held.path === path) return undefined
      }
    }
    return undefined
  }
}

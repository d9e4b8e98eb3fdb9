import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { BLOB_CHUNK_BYTES, BLOB_HEADER_TIMEOUT_MS, BLOB_PROTOCOL, CHUNK_TIMEOUT_MS, JsonStream, TRANSFER_DIAL_TIMEOUT_MS, blobResponseSchema } from '@barnraise/protocol'
import { RefusedError } from './coordinator-client.ts'

async function fileSha256 (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/**
 * Checkpoints and shards fetched over `/barnraise/blob/1.0.0`, kept in the agent's data
 * directory by sha256. A broken download resumes from the bytes already on disk; nothing is
 * used before its hash is checked.
 */
export class BlobCache {
  readonly #dir: string
  readonly #libp2p: Libp2p
  readonly #coordinator: Multiaddr

  constructor (dataDir: string, libp2p: Libp2p, coordinator: Multiaddr) {
    this.#dir = join(dataDir, 'blobs')
    this.#libp2p = libp2p
    this.#coordinator = coordinator
  }

  /** Returns the blob's bytes, downloading (or resuming) it first when it is not cached. */
  async get (sha256: string, signal?: AbortSignal): Promise<Uint8Array> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${sha256}`)
    const path = join(this.#dir, sha256)
    if (await stat(path).catch(() => undefined) === undefined) await this.#download(sha256, path, signal)
    return new Uint8Array(await readFile(path))
  }

  async #download (sha256: string, path: string, signal?: AbortSignal): Promise<void> {
    await mkdir(this.#dir, { recursive: true })
    const partial = `${path}.part`
    let offset = (await stat(partial).catch(() => undefined))?.size ?? 0
    const stream = await this.#libp2p.dialProtocol(this.#coordinator, BLOB_PROTOCOL, { signal: signal ?? AbortSignal.timeout(TRANSFER_DIAL_TIMEOUT_MS) })
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    const file = await open(partial, 'a')
    try {
      await messages.write({ type: 'blob', sha256, offset })
      const header = await messages.read(blobResponseSchema, BLOB_HEADER_TIMEOUT_MS)
      if (!header.ok) {
        // A partial file can be stale (the coordinator's blob is shorter); start over next time.
        if (offset > 0) await rm(partial, { force: true })
        throw new RefusedError(header.code, header.message)
      }
      while (offset < header.size) {
        signal?.throwIfAborted()
        const chunk = await messages.readFrame(CHUNK_TIMEOUT_MS)
        if (offset + chunk.byteLength > header.size) throw new Error(`blob ${sha256} is longer than announced`)
        await file.write(chunk)
        offset += chunk.byteLength
      }
    } finally {
      await file.close()
      await messages.close().catch(() => {})
    }
    const actual = await fileSha256(partial)
    if (actual !== sha256) {
      await rm(partial, { force: true })
      throw new Error(`blob ${sha256} failed verification (got ${actual}); it will be fetched again`)
    }
    await rename(partial, path)
  }
}

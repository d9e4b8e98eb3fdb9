import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { BLOB_CHUNK_BYTES, BLOB_HEADER_TIMEOUT_MS, BLOB_PROTOCOL, CHUNK_TIMEOUT_MS, CodedError, JsonStream, MAX_BLOB_BYTES, MAX_URL_SHARD_BYTES, TRANSFER_DIAL_TIMEOUT_MS, blobResponseSchema, fetchShardBytes, readWholeFile, sha256Hex, shardUrlRefusal } from '@barnraise/protocol'
import { RefusedError } from './coordinator-client.ts'
import type { PeerExchange } from './peers/peer-exchange.ts'

/** A shard a run serves by URL that this agent cannot or will not use: the unit is declined with the reason. */
export class ShardUnavailableError extends Error {
  readonly code = 'ERR_SHARD_UNAVAILABLE'
}

/**
 * A blob whose size, announced by the coordinator (or already on disk), is not the size the
 * unit says it must have (a base for the unit's model): refused before a byte is downloaded or
 * read, and the unit declined with why.
 */
export class BlobSizeError extends CodedError<'ERR_BLOB_SIZE'> {}

/** Throws BlobSizeError when blob `sha256`, announced (or cached) as `size` bytes, is not the size `expected` allows. */
function checkSize (sha256: string, size: number, expected: ExpectedSize): void {
  if (expected.bytes !== undefined && size !== expected.bytes) {
    throw new BlobSizeError('ERR_BLOB_SIZE', `${expected.what} ${sha256.slice(0, 12)} is ${size} bytes, not the ${expected.bytes} it must be; not fetched`)
  }
  if (expected.maxBytes !== undefined && size > expected.maxBytes) {
    throw new BlobSizeError('ERR_BLOB_SIZE', `${expected.what} ${sha256.slice(0, 12)} is ${size} bytes, more than the ${expected.maxBytes} it can be; not fetched`)
  }
}

/** What `BlobCache.get` knows of a blob before fetching it. */
export interface BlobGetOptions {
  /** false: from the coordinator only, never offered to peers (another node's report). */
  share?: boolean
  /** The size the blob must have (a base: its model's stored checkpoint), refused otherwise before it is fetched or read. */
  bytes?: number
  /** The most it may be (a blob whose layout may vary, as a momentum's header), refused past it before it is fetched or read. */
  maxBytes?: number
  /** What the blob is, for the error's message ("the unit's base"). */
  what?: string
}

/** The size a blob must have, and what it is in words. */
interface ExpectedSize { bytes?: number, maxBytes?: number, what: string }

/** What a partial file of a blob is called after its sha256: a plain download, a swarm download, a write. */
const PARTIAL_SUFFIXES = ['.part', '.swarm', '.put']
/** The names the cache gives files: a blob's sha256, then one of PARTIAL_SUFFIXES or nothing. */
const CACHE_NAME = /^([0-9a-f]{64})(\.part|\.swarm|\.put)?$/

async function fileSha256 (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/**
 * Checkpoints and shards fetched from the run's peers (with `peers`) or over
 * `/barnraise/blob/1.0.0`, kept in the agent's data
 * directory by sha256. A broken download resumes from the bytes already on disk; nothing is
 * used before its hash is checked.
 */
export class BlobCache {
  readonly #dir: string
  readonly #libp2p: Libp2p
  readonly #coordinator: Multiaddr

  readonly #allowPrivateUrls: boolean
  readonly #refuseUrls: boolean
  readonly #peers: PeerExchange | undefined
  readonly #log: (message: string, fields: Record<string, unknown>) => void

  constructor (dataDir: string, libp2p: Libp2p, coordinator: Multiaddr, options: { allowPrivateUrls?: boolean, refuseUrls?: boolean, peers?: PeerExchange, log?: (message: string, fields: Record<string, unknown>) => void } = {}) {
    this.#dir = join(dataDir, 'blobs')
    this.#libp2p = libp2p
    this.#coordinator = coordinator
    this.#allowPrivateUrls = options.allowPrivateUrls === true
    this.#refuseUrls = options.refuseUrls === true
    this.#peers = options.peers
    this.#log = options.log ?? (() => {})
  }

  /**
   * Returns the blob's bytes, downloading (or resuming) it first when it is not cached: from the
   * coordinator, or from `url` for shards a run's manifest serves elsewhere. `share: false`
   * keeps it out of peer exchange (fetched from the coordinator only and never offered to
   * peers): another node's report handed out for scoring is the coordinator's to give, and a
   * peer's block server answers strangers who read its hash off the public ledger. With
   * `bytes`, a blob announced (or cached) at another size is refused before it is fetched or
   * read (BlobSizeError, `ERR_BLOB_SIZE`).
   */
  async get (sha256: string, signal?: AbortSignal, url?: string, options: BlobGetOptions = {}): Promise<Uint8Array> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`not a sha256: ${sha256}`)
    const path = join(this.#dir, sha256)
    const cached = await stat(path).catch(() => undefined)
    const expected = options.bytes === undefined && options.maxBytes === undefined
      ? undefined
      : { ...(options.bytes !== undefined ? { bytes: options.bytes } : {}), ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}), what: options.what ?? 'blob' }
    if (cached === undefined) {
      if (url !== undefined) await this.#downloadUrl(sha256, url, path, signal)
      else if (options.share === false) await this.#download(sha256, path, signal, expected)
      else if (this.#peers !== undefined) await this.#downloadFromPeers(this.#peers, sha256, path, signal, expected)
      else await this.#download(sha256, path, signal, expected)
    } else if (expected !== undefined) {
      // Hashed right when it was stored, but maybe not what this unit needs: then left for the sweep.
      checkSize(sha256, cached.size, expected)
    }
    // Past fs.readFile's 2 GiB: a 1B model's checkpoint is 4.4 GB.
    return await readWholeFile(path)
  }

  /** Whether the blob is cached (checked when it was stored). */
  async has (sha256: string): Promise<boolean> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return false
    return await stat(join(this.#dir, sha256)).then(() => true, () => false)
  }

  /**
   * Stores bytes this node made itself (a rebuilt base) under their sha256, checked first, and
   * tells the tracker it holds them (one round trip; a failure there is logged, not thrown).
   */
  async put (sha256: string, bytes: Uint8Array): Promise<void> {
    const actual = sha256Hex(bytes)
    if (actual !== sha256) throw new Error(`refusing to cache ${actual} as ${sha256}`)
    await mkdir(this.#dir, { recursive: true })
    const path = join(this.#dir, sha256)
    await writeFile(`${path}.put`, bytes)
    await rename(`${path}.put`, path)
    await this.#peers?.offer(sha256, path, { announce: true }).catch((err: unknown) => { this.#log('could not offer a blob to peers', { sha256, err }) })
  }

  /**
   * Offers a verified blob to peers in the background (hashing it in blocks takes a moment);
   * `announce` when the tracker does not know this node holds it (it did not fetch it in the swarm).
   */
  #offer (sha256: string, path: string, announce = false): void {
    this.#peers?.offer(sha256, path, { announce }).catch((err: unknown) => { this.#log('could not offer a blob to peers', { sha256, err }) })
  }

  /**
   * Peer exchange first; a coordinator without it (or a swarm that failed for any reason but a
   * refusal) leaves the plain download, which resumes on its own.
   */
  async #downloadFromPeers (peers: PeerExchange, sha256: string, path: string, signal?: AbortSignal, expected?: ExpectedSize): Promise<void> {
    await mkdir(this.#dir, { recursive: true })
    try {
      await peers.fetch(sha256, path, signal, expected === undefined ? undefined : (size) => { checkSize(sha256, size, expected) })
      return
    } catch (err) {
      // The swarm's size is the coordinator's blob store's: the plain download would announce it too.
      if (err instanceof RefusedError || err instanceof BlobSizeError || signal?.aborted === true) throw err
      this.#log('peer exchange failed; downloading from the coordinator', { sha256, err })
    }
    await this.#download(sha256, path, signal, expected)
    // The blocks the peers had delivered are in the whole file now.
    await rm(`${path}.swarm`, { force: true })
    this.#offer(sha256, path, true)
  }

  /** Forgets a blob this node no longer needs (a round's reports once folded, a replaced base), with any partial download of it. */
  async drop (sha256: string): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return
    this.#peers?.forget(sha256)
    const path = join(this.#dir, sha256)
    await Promise.all([path, ...PARTIAL_SUFFIXES.map((suffix) => `${path}${suffix}`)].map(async (p) => { await rm(p, { force: true }) }))
  }

  /**
   * Drops every blob of the cache that `keep` does not name, with its partial files; of a blob it
   * names, the partial files once the blob is whole (a download, a write that a stopped process
   * left). A partial download of a blob `keep` names and that is not whole yet stays, to be
   * resumed. Only the cache's own names (a sha256, with `.part`, `.swarm` or `.put`) are looked
   * at: nothing else in the folder is touched. Call it when nothing reads or writes the cache
   * (the work loop does, as a unit starts). Returns the blobs dropped.
   */
  async sweep (keep: ReadonlySet<string>): Promise<string[]> {
    const names = await readdir(this.#dir).catch(() => [] as string[])
    const whole = new Set<string>()
    const stale = new Set<string>()
    const partials: string[] = []
    for (const name of names) {
      const match = CACHE_NAME.exec(name)
      if (match === null) continue
      const sha = match[1]!
      if (!keep.has(sha)) stale.add(sha)
      else if (match[2] === undefined) whole.add(sha)
      else partials.push(name)
    }
    // A file that will not go (a folder someone made under a blob's name) costs its space, not the unit.
    const failed = (err: unknown): void => { this.#log('could not remove a file from the blob cache', { err }) }
    for (const sha of stale) await this.drop(sha).catch(failed)
    for (const name of partials) {
      const sha = name.slice(0, 64)
      // A `.put` is never resumed (put writes it whole, then renames it).
      if (whole.has(sha) || name.endsWith('.put')) await rm(join(this.#dir, name), { force: true }).catch(failed)
    }
    return [...stale]
  }

  async #downloadUrl (sha256: string, url: string, path: string, signal?: AbortSignal): Promise<void> {
    if (this.#refuseUrls) throw new ShardUnavailableError(`shard ${sha256.slice(0, 12)} is served at ${url}, and this agent does not fetch shards by URL (--no-shard-urls)`)
    const refusal = shardUrlRefusal(url, this.#allowPrivateUrls)
    if (refusal !== null) throw new ShardUnavailableError(`shard ${sha256.slice(0, 12)}: ${refusal}`)
    let bytes: Uint8Array
    try {
      // The caller's signal stops it early; the whole fetch is bounded either way.
      const bounded = AbortSignal.timeout(10 * 60_000)
      bytes = await fetchShardBytes(url, MAX_URL_SHARD_BYTES, { signal: signal === undefined ? bounded : AbortSignal.any([signal, bounded]), allowPrivate: this.#allowPrivateUrls })
    } catch (err) {
      if (signal?.aborted === true) throw err
      throw new ShardUnavailableError(`shard ${sha256.slice(0, 12)} could not be fetched: ${(err as Error).message}`)
    }
    const actual = sha256Hex(bytes)
    if (actual !== sha256) throw new ShardUnavailableError(`the shard at ${url} has sha256 ${actual}, not the ${sha256} the run names; not used`)
    await mkdir(this.#dir, { recursive: true })
    await writeFile(`${path}.part`, bytes)
    await rename(`${path}.part`, path)
  }

  async #download (sha256: string, path: string, signal?: AbortSignal, expected?: ExpectedSize): Promise<void> {
    await mkdir(this.#dir, { recursive: true })
    const partial = `${path}.part`
    let offset = (await stat(partial).catch(() => undefined))?.size ?? 0
    // A partial file past the size the blob must have is no start for it.
    if (expected !== undefined && offset > (expected.bytes ?? expected.maxBytes ?? Infinity)) {
      await rm(partial, { force: true })
      offset = 0
    }
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
      // The size is the coordinator's word, and the partial file grows to it: held to the
      // largest blob there is, and to the offset this agent asked for.
      if (header.size > MAX_BLOB_BYTES || header.offset !== offset || header.size < offset) {
        await rm(partial, { force: true })
        throw new Error(`the coordinator announced blob ${sha256.slice(0, 12)} as ${header.size} bytes from offset ${header.offset} (asked from ${offset}; blobs are at most ${MAX_BLOB_BYTES} bytes)`)
      }
      if (expected !== undefined) {
        try {
          checkSize(sha256, header.size, expected)
        } catch (err) {
          await rm(partial, { force: true })
          throw err
        }
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

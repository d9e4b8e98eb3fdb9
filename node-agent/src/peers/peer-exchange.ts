import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rename, rm, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { BLOB_BLOCK_BYTES, BLOB_CHUNK_BYTES, BLOB_HEADER_TIMEOUT_MS, BLOB_PROTOCOL, CHUNK_TIMEOUT_MS, JsonStream, REQUEST_TIMEOUT_MS, SWARM_PROTOCOL, TRANSFER_DIAL_TIMEOUT_MS, blobResponseSchema, blockCount, swarmResponseSchema } from '@barnraise/protocol'
import type { BlockRange, SwarmPeer } from '@barnraise/protocol'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { CID } from 'multiformats/cid'
import { RefusedError } from '../coordinator-client.ts'
import { BlockIndex } from './block-index.ts'
import { startBitswap } from './bitswap-engine.ts'
import type { BlockExchange } from './bitswap-engine.ts'

export interface PeerExchangeOptions {
  /**
   * With its own share of blocks fetched, how long the agent waits without any block arriving
   * before it takes every block still missing from the coordinator.
   */
  stallMs?: number
  /** Blocks asked of peers at once. */
  maxWants?: number
  /** Peers dialled at once, and how long each dial may take. */
  dialTimeoutMs?: number
  log?: (message: string, fields: Record<string, unknown>) => void
  /** Counts each verified block by where it came from (the agent's --metrics). */
  onBytes?: (source: 'peers' | 'coordinator', bytes: number) => void
}

/** Where a download's bytes came from. */
export interface ExchangeStats {
  fromPeers: number
  fromCoordinator: number
}

const DEFAULT_STALL_MS = 5_000
const DEFAULT_MAX_WANTS = 256
const DEFAULT_DIAL_TIMEOUT_MS = 5_000
const MAX_DIALS = 8

/**
 * Fetches blobs in blocks from the run's other agents, with the coordinator as the source of
 * last resort (docs/peer-exchange.md). The coordinator's swarm protocol gives the blob's block
 * digests, the peers that asked for it before, and this agent's share of blocks to take from
 * the coordinator; every other block is asked of the peers over Bitswap, and whatever does not
 * arrive while peers stall comes from the coordinator too. Each block is checked against its
 * digest as it lands, the whole blob against its sha256 at the end, and every verified block is
 * served to the peers in turn.
 */
export class PeerExchange {
  readonly index: BlockIndex
  readonly stats: ExchangeStats = { fromPeers: 0, fromCoordinator: 0 }
  readonly #libp2p: Libp2p
  readonly #coordinator: Multiaddr
  readonly #exchange: BlockExchange
  readonly #stallMs: number
  readonly #maxWants: number
  readonly #dialTimeoutMs: number
  readonly #log: (message: string, fields: Record<string, unknown>) => void
  readonly #onBytes: (source: 'peers' | 'coordinator', bytes: number) => void

  private constructor (libp2p: Libp2p, coordinator: Multiaddr, exchange: BlockExchange, index: BlockIndex, options: PeerExchangeOptions) {
    this.#libp2p = libp2p
    this.#coordinator = coordinator
    this.#exchange = exchange
    this.index = index
    this.#stallMs = options.stallMs ?? DEFAULT_STALL_MS
    this.#maxWants = options.maxWants ?? DEFAULT_MAX_WANTS
    this.#dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS
    this.#log = options.log ?? (() => {})
    this.#onBytes = options.onBytes ?? (() => {})
  }

  /** Starts Bitswap on the agent's host (which must listen somewhere its peers can reach). */
  static async start (libp2p: Libp2p, coordinator: Multiaddr, options: PeerExchangeOptions = {}): Promise<PeerExchange> {
    const index = new BlockIndex()
    return new PeerExchange(libp2p, coordinator, await startBitswap(libp2p, index), index, options)
  }

  async stop (): Promise<void> {
    await this.#exchange.stop()
  }

  /** Offers a verified blob this agent already holds (downloaded whole, or rebuilt) to its peers. */
  async offer (sha256: string, path: string): Promise<void> {
    const { digests, size } = await fileBlockDigests(path)
    const { cids } = this.index.register(sha256, digests, size, path)
    for (const cid of cids) void this.#exchange.announce(cid).catch(() => {})
  }

  /** Stops offering a blob (dropped from the cache) and tells the tracker, in the background. */
  forget (sha256: string): void {
    if (!this.index.holds(sha256)) return
    this.index.forget(sha256)
    void this.#leave(sha256).catch((err: unknown) => { this.#log('could not tell the tracker a blob was dropped', { sha256, err }) })
  }

  async #leave (sha256: string): Promise<void> {
    const stream = await this.#libp2p.dialProtocol(this.#coordinator, SWARM_PROTOCOL, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    const messages = new JsonStream(stream)
    try {
      await messages.write({ type: 'swarm-leave', sha256 })
      await messages.read(swarmResponseSchema, REQUEST_TIMEOUT_MS)
    } finally {
      await messages.close().catch(() => {})
    }
  }

  /**
   * Downloads blob `sha256` into `dest` (renamed there only once whole and verified). Throws
   * RefusedError when the coordinator refuses the blob, and any other error when neither the
   * peers nor the coordinator delivered it.
   */
  async fetch (sha256: string, dest: string, signal?: AbortSignal): Promise<void> {
    const swarm = await this.#askSwarm(sha256, signal)
    const count = blockCount(swarm.size)
    const partial = `${dest}.swarm`
    const present = await this.#resume(partial, swarm.size, swarm.digests)
    this.#log('fetching from peers', { sha256, blocks: count, held: present.reduce((n, p) => n + p, 0), seed: swarm.seed, peers: swarm.peers.map((p) => p.peerId) })
    const file = await open(partial, 'r+')
    const { held, cids } = this.index.register(sha256, swarm.digests, swarm.size, partial, present)
    const fetchAbort = new AbortController()
    const stop = signal === undefined ? fetchAbort.signal : AbortSignal.any([signal, fetchAbort.signal])
    let lastProgress = Date.now()
    let missing = present.reduce((n, p) => n + (p === 1 ? 0 : 1), 0)
    let completed!: () => void
    const done = new Promise<void>((resolve) => { completed = resolve })
    if (missing === 0) completed()
    const wants = new Map<number, AbortController>()

    /** Writes a verified block once, whoever delivered it, and tells waiting peers. */
    const land = async (i: number, bytes: Uint8Array, from: 'peer' | 'coordinator'): Promise<void> => {
      if (present[i] === 1) return
      if (!sameDigest(bytes, swarm.digests, i)) throw new Error(`block ${i} of ${sha256.slice(0, 12)} from the ${from} does not match its digest`)
      await file.write(bytes, 0, bytes.byteLength, i * BLOB_BLOCK_BYTES)
      if (present[i] === 1) return
      present[i] = 1
      held.present[i] = 1
      if (from === 'peer') this.stats.fromPeers += bytes.byteLength
      else this.stats.fromCoordinator += bytes.byteLength
      this.#onBytes(from === 'peer' ? 'peers' : 'coordinator', bytes.byteLength)
      lastProgress = Date.now()
      wants.get(i)?.abort()
      wants.delete(i)
      void this.#exchange.announce(cids[i]!).catch(() => {})
      if (--missing === 0) completed()
    }

    const inSeed = new Uint8Array(count)
    for (const b of blocksOf(swarm.seed, count)) inSeed[b] = 1
    const queue: number[] = []
    for (let b = 0; b < count; b++) if (present[b] === 0 && inSeed[b] === 0) queue.push(b)
    let failure: Error | undefined
    const fail = (err: unknown): void => { failure ??= err as Error; completed() }

    const wantNext = (): void => {
      while (wants.size < this.#maxWants && queue.length > 0 && !stop.aborted) {
        const b = queue.shift()!
        if (present[b] === 1) continue
        const controller = new AbortController()
        wants.set(b, controller)
        this.#exchange.want(cids[b]!, AbortSignal.any([controller.signal, stop]))
          .then(async (bytes) => { await land(b, bytes, 'peer') })
          .catch((err: unknown) => { if (!controller.signal.aborted && !stop.aborted) this.#log('peer block failed', { sha256, block: b, err }) })
          .finally(() => { if (wants.get(b) === controller) wants.delete(b); wantNext() })
      }
    }

    try {
      await this.#dialPeers(swarm.peers, stop)
      wantNext()
      let seedsDone = false
      const seeding = this.#fromCoordinator(sha256, rangesOf(blocksOf(swarm.seed, count).filter((b) => present[b] === 0)), count, swarm.size, land, stop)
        .then(() => { seedsDone = true; lastProgress = Date.now() }, fail)
      // Peers stalled (or there are none). First the tracker is asked again: it names peers that
      // came since and hands over blocks nobody took; a second stall takes everything still
      // missing from the coordinator.
      let stalls = 0
      const watchdog = setInterval(() => {
        if (!seedsDone || missing === 0 || Date.now() - lastProgress < this.#stallMs) return
        seedsDone = false
        const firstStall = stalls++ === 0
        const next = firstStall
          ? this.#askSwarm(sha256, stop).then(async (again) => {
            this.#log('peers stalled; asked the tracker again', { sha256, seed: again.seed, peers: again.peers.map((p) => p.peerId) })
            await this.#dialPeers(again.peers, stop)
            const ranges = rangesOf(blocksOf(again.seed, count).filter((b) => present[b] === 0))
            await this.#fromCoordinator(sha256, ranges, count, swarm.size, land, stop)
          })
          : (() => {
              const rest: number[] = []
              for (let b = 0; b < count; b++) if (present[b] === 0) rest.push(b)
              for (const controller of wants.values()) controller.abort()
              queue.length = 0
              this.#log('peers stalled again; taking the rest from the coordinator', { sha256, blocks: rest.length })
              return this.#fromCoordinator(sha256, rangesOf(rest), count, swarm.size, land, stop)
            })()
        next.then(() => { seedsDone = true; lastProgress = Date.now() }, fail)
      }, Math.min(1000, this.#stallMs))
      try {
        await Promise.race([done, abortedPromise(stop)])
      } finally {
        clearInterval(watchdog)
      }
      await seeding
      if (failure !== undefined) throw failure
      stop.throwIfAborted()
    } finally {
      fetchAbort.abort()
      await file.close()
    }
    const actual = await fileSha256(partial)
    if (actual !== sha256) {
      this.index.forget(sha256)
      await rm(partial, { force: true })
      throw new Error(`blob ${sha256} failed verification (got ${actual}); it will be fetched again`)
    }
    await rename(partial, dest)
    this.index.moved(sha256, dest)
  }

  /** The swarm's answer: size, digests, peers and this agent's seed share. */
  async #askSwarm (sha256: string, signal?: AbortSignal): Promise<{ size: number, digests: Uint8Array, peers: SwarmPeer[], seed: BlockRange[] }> {
    const stream = await this.#libp2p.dialProtocol(this.#coordinator, SWARM_PROTOCOL, { signal: signal ?? AbortSignal.timeout(TRANSFER_DIAL_TIMEOUT_MS) })
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    try {
      await messages.write({ type: 'swarm', sha256 })
      const header = await messages.read(swarmResponseSchema, BLOB_HEADER_TIMEOUT_MS)
      if (!header.ok) throw new RefusedError(header.code, header.message)
      if ('left' in header) throw new Error('the coordinator answered a question that was not asked')
      if (header.blockCount !== blockCount(header.size)) throw new Error(`the swarm answer for ${sha256} has ${header.blockCount} blocks for ${header.size} bytes`)
      const digests = new Uint8Array(header.blockCount * 32)
      let got = 0
      while (got < digests.byteLength) {
        const frame = await messages.readFrame(REQUEST_TIMEOUT_MS)
        if (got + frame.byteLength > digests.byteLength) throw new Error('the swarm answer has more digests than blocks')
        digests.set(frame, got)
        got += frame.byteLength
      }
      return { size: header.size, digests, peers: header.peers, seed: header.seed }
    } finally {
      await messages.close().catch(() => {})
    }
  }

  /** Which blocks of an earlier, interrupted download are already good. */
  async #resume (partial: string, size: number, digests: Uint8Array): Promise<Uint8Array> {
    const count = blockCount(size)
    const present = new Uint8Array(count)
    const existing = await stat(partial).catch(() => undefined)
    if (existing?.size === size) {
      const file = await open(partial, 'r')
      try {
        for (let b = 0; b < count; b++) {
          const length = Math.min(BLOB_BLOCK_BYTES, size - b * BLOB_BLOCK_BYTES)
          const bytes = new Uint8Array(length)
          await file.read(bytes, 0, length, b * BLOB_BLOCK_BYTES)
          if (sameDigest(bytes, digests, b)) present[b] = 1
        }
      } finally {
        await file.close()
      }
      return present
    }
    const file = await open(partial, 'w')
    await file.truncate(size)
    await file.close()
    return present
  }

  async #dialPeers (peers: SwarmPeer[], signal: AbortSignal): Promise<void> {
    const own = this.#libp2p.peerId.toString()
    const targets = peers.filter((p) => p.peerId !== own)
    for (let i = 0; i < targets.length; i += MAX_DIALS) {
      await Promise.all(targets.slice(i, i + MAX_DIALS).map(async (peer) => {
        try {
          const addrs = peer.addrs.map((a) => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${peer.peerId}`))
          await this.#libp2p.dial(addrs, { signal: AbortSignal.any([signal, AbortSignal.timeout(this.#dialTimeoutMs)]) })
        } catch (err) {
          this.#log('could not reach a peer', { peerId: peer.peerId, err })
        }
      }))
    }
  }

  /** Takes block ranges from the coordinator's blob service, landing each block as it completes. */
  async #fromCoordinator (sha256: string, ranges: BlockRange[], count: number, size: number, land: (i: number, bytes: Uint8Array, from: 'coordinator') => Promise<void>, signal: AbortSignal): Promise<void> {
    for (const range of ranges) {
      const to = Math.min(range.to, count)
      if (range.from >= to) continue
      const offset = range.from * BLOB_BLOCK_BYTES
      const end = Math.min(size, to * BLOB_BLOCK_BYTES)
      const stream = await this.#libp2p.dialProtocol(this.#coordinator, BLOB_PROTOCOL, { signal: AbortSignal.any([signal, AbortSignal.timeout(TRANSFER_DIAL_TIMEOUT_MS)]) })
      const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
      try {
        await messages.write({ type: 'blob', sha256, offset, length: end - offset })
        const header = await messages.read(blobResponseSchema, BLOB_HEADER_TIMEOUT_MS)
        if (!header.ok) throw new RefusedError(header.code, header.message)
        if (header.size !== size) throw new Error(`the coordinator's blob ${sha256} is ${header.size} bytes, not ${size}`)
        let block = range.from
        let buffer = new Uint8Array(Math.min(BLOB_BLOCK_BYTES, size - block * BLOB_BLOCK_BYTES))
        let filled = 0
        let position = offset
        while (position < end) {
          signal.throwIfAborted()
          let chunk = await messages.readFrame(CHUNK_TIMEOUT_MS)
          if (position + chunk.byteLength > end) throw new Error(`blob ${sha256} range is longer than asked`)
          position += chunk.byteLength
          while (chunk.byteLength > 0) {
            const take = Math.min(chunk.byteLength, buffer.byteLength - filled)
            buffer.set(chunk.subarray(0, take), filled)
            filled += take
            chunk = chunk.subarray(take)
            if (filled === buffer.byteLength) {
              await land(block, buffer, 'coordinator')
              block++
              if (block < to) buffer = new Uint8Array(Math.min(BLOB_BLOCK_BYTES, size - block * BLOB_BLOCK_BYTES))
              filled = 0
            }
          }
        }
      } finally {
        await messages.close().catch(() => {})
      }
    }
  }
}

function sameDigest (bytes: Uint8Array, digests: Uint8Array, index: number): boolean {
  const digest = createHash('sha256').update(bytes).digest()
  return Buffer.compare(digest, digests.subarray(index * 32, (index + 1) * 32)) === 0
}

/** The block indices of ranges, below `count`. */
function blocksOf (ranges: BlockRange[], count: number): number[] {
  const blocks: number[] = []
  for (const r of ranges) for (let b = r.from; b < Math.min(r.to, count); b++) blocks.push(b)
  return blocks
}

/** Sorted block indices as [from, to) ranges. */
function rangesOf (blocks: number[]): BlockRange[] {
  const ranges: BlockRange[] = []
  for (const b of blocks) {
    const last = ranges.at(-1)
    if (last !== undefined && last.to === b) last.to = b + 1
    else ranges.push({ from: b, to: b + 1 })
  }
  return ranges
}

async function abortedPromise (signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve()
    else signal.addEventListener('abort', () => { resolve() }, { once: true })
  })
}

async function fileSha256 (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** A file's block digests, read once. */
async function fileBlockDigests (path: string): Promise<{ digests: Uint8Array, size: number }> {
  const file: FileHandle = await open(path, 'r')
  try {
    const { size } = await file.stat()
    const count = blockCount(size)
    const digests = new Uint8Array(count * 32)
    const bytes = new Uint8Array(BLOB_BLOCK_BYTES)
    for (let b = 0; b < count; b++) {
      const length = Math.min(BLOB_BLOCK_BYTES, size - b * BLOB_BLOCK_BYTES)
      await file.read(bytes, 0, length, b * BLOB_BLOCK_BYTES)
      digests.set(createHash('sha256').update(bytes.subarray(0, length)).digest(), b * 32)
    }
    return { digests, size }
  } finally {
    await file.close()
  }
}

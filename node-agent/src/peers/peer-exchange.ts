import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rename, rm, stat } from 'node:fs/promises'
import { BLOB_BLOCK_BYTES, BLOB_CHUNK_BYTES, BLOB_HEADER_TIMEOUT_MS, BLOB_PROTOCOL, CHUNK_TIMEOUT_MS, JsonStream, PEER_BLOCKS_PROTOCOL, REQUEST_TIMEOUT_MS, SWARM_PROTOCOL, TRANSFER_DIAL_TIMEOUT_MS, blobResponseSchema, blockCount, blocksInRanges, toBlockRanges, decodeBitfield, namesPrivateHost, peerBlockResponseSchema, swarmResponseSchema } from '@barnraise/protocol'
import type { BlockRange, SwarmPeer } from '@barnraise/protocol'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { RefusedError } from '../coordinator-client.ts'
import { BlockIndex } from './block-index.ts'
import { BlockServer } from './block-server.ts'
import { PeerPermissions } from './peer-permissions.ts'
import { blockAvailability, pickBlock } from './block-choice.ts'

export interface PeerExchangeOptions {
  /**
   * After asking the tracker again (once nothing arrived and nothing was asked of a peer for a
   * second), how long the agent waits the same way before it takes every block still missing
   * from the coordinator.
   */
  stallMs?: number
  /** Blocks asked of peers at once, in all, and of one peer. */
  maxInFlight?: number
  perPeer?: number
  /** How long a peer dial may take. */
  dialTimeoutMs?: number
  /** How long one block from a peer may take, header and bytes (60 s; a peer trickling bytes is cut off). */
  blockTimeoutMs?: number
  log?: (message: string, fields: Record<string, unknown>) => void
  /** Counts each verified block by where it came from (the agent's --metrics). */
  onBytes?: (source: 'peers' | 'coordinator', bytes: number) => void
}

/** Where a download's bytes came from (what this agent sent its peers is `sentBytes`). */
export interface ExchangeStats {
  fromPeers: number
  fromCoordinator: number
}

const DEFAULT_STALL_MS = 5_000
const DEFAULT_MAX_IN_FLIGHT = 8
const DEFAULT_PER_PEER = 2
const DEFAULT_DIAL_TIMEOUT_MS = 5_000
/** Blobs up to this size are not worth asking peers for. */
const SMALL_BLOB_BYTES = 4 * BLOB_BLOCK_BYTES
/** Nothing arriving and nothing asked of a peer for this long: ask the tracker again. */
const REASK_MS = 1_000
/** How often a peer that has nothing this agent needs is asked again what it holds. */
const HAVE_REFRESH_MS = 500
/** How often the count of peers holding each block (for rarest first) is taken again. */
const AVAILABILITY_MS = 200
/** A peer that fails this many requests in a row is no longer asked during this fetch. */
const MAX_PEER_FAILURES = 3
/** A peer none of whose last this many streams opened is no longer asked during this fetch. */
const MAX_DIAL_FAILURES = 5
/** One block from a peer: its header, then all of it, within this (a peer trickling bytes is cut off). */
const DEFAULT_BLOCK_TIMEOUT_MS = 60_000
/** Peers that dialled this agent (not named by the tracker) it asks during one fetch: any stranger can announce a blob. */
const MAX_UNNAMED_PEERS = 8

/** What this agent knows of one peer during a fetch. */
interface PeerState {
  id: PeerId
  /** Where the tracker said it listens (with its peer id); empty for a peer that dialled this agent. */
  addrs: Multiaddr[]
  /** The blocks it said it holds, when it last said. */
  have: Uint8Array | undefined
  haveAt: number
  asking: boolean
  inFlight: number
  failures: number
  /** Streams that could not be opened in a row (each also waits a moment before the next ask). */
  dialFailures: number
  busyUntil: number
}

/**
 * Fetches blobs in 1 MiB blocks from the run's other agents, with the coordinator as the source
 * of last resort (docs/peer-exchange.md), and serves the blocks it holds to them
 * (`block-server.ts`, `/barnraise/blocks/1.0.0`). The coordinator's swarm protocol gives the
 * blob's block digests, the peers that asked for it before, and this agent's share of blocks to
 * take from the coordinator. Every other block is asked of one peer that says it holds it (at
 * most two at a time of one peer, eight in all), so no block crosses a link twice. Each block is
 * checked against its digest as it lands, the whole blob against its sha256 at the end.
 */
export class PeerExchange {
  readonly index: BlockIndex
  readonly stats: ExchangeStats = { fromPeers: 0, fromCoordinator: 0 }
  readonly #libp2p: Libp2p
  readonly #coordinator: Multiaddr
  /** A coordinator on a private or loopback address (a lab's own network, a test): its tracker may name peers there too. */
  readonly #coordinatorIsPrivate: boolean
  readonly #server: BlockServer
  readonly #stallMs: number
  readonly #blockTimeoutMs: number
  readonly #maxInFlight: number
  readonly #perPeer: number
  readonly #dialTimeoutMs: number
  readonly #log: (message: string, fields: Record<string, unknown>) => void
  readonly #onBytes: (source: 'peers' | 'coordinator', bytes: number) => void
  /** Fetches under way, by blob: a peer asking about one of them is asked in return. */
  readonly #fetching = new Map<string, (peer: PeerId) => void>()
  readonly #permissions: PeerPermissions

  private constructor (libp2p: Libp2p, coordinator: Multiaddr, options: PeerExchangeOptions) {
    this.#libp2p = libp2p
    this.#coordinator = coordinator
    this.#coordinatorIsPrivate = onPrivateNetwork(coordinator)
    this.index = new BlockIndex()
    const permissions = new PeerPermissions(async (sha256, peerId) => await this.#isMember(sha256, peerId))
    this.#permissions = permissions
    this.#server = new BlockServer(libp2p, this.index, (sha256, connection) => { this.#fetching.get(sha256)?.(connection.remotePeer) },
      async (sha256, peerId, source, held) => await permissions.check(sha256, peerId, source, held))
    this.#stallMs = options.stallMs ?? DEFAULT_STALL_MS
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT
    this.#perPeer = options.perPeer ?? DEFAULT_PER_PEER
    this.#dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS
    this.#blockTimeoutMs = options.blockTimeoutMs ?? DEFAULT_BLOCK_TIMEOUT_MS
    this.#log = options.log ?? (() => {})
    this.#onBytes = options.onBytes ?? (() => {})
  }

  /** Starts serving blocks on the agent's host (which must listen somewhere its peers can reach). */
  static async start (libp2p: Libp2p, coordinator: Multiaddr, options: PeerExchangeOptions = {}): Promise<PeerExchange> {
    const exchange = new PeerExchange(libp2p, coordinator, options)
    await exchange.#server.start()
    return exchange
  }

  async stop (): Promise<void> {
    await this.#server.stop()
  }

  /**
   * Offers a verified blob this agent already holds to its peers. With `announce` (a base it
   * rebuilt, or a blob it downloaded outside the swarm) the tracker is told, so later askers
   * are pointed at it: otherwise they would only ever find the nodes that fetched it.
   */
  async offer (sha256: string, path: string, options: { announce?: boolean } = {}): Promise<void> {
    const { size } = await stat(path)
    this.index.register(sha256, size, blockCount(size), path)
    if (options.announce === true) await this.#hold(sha256)
  }

  async #hold (sha256: string): Promise<void> {
    const stream = await this.#libp2p.dialProtocol(this.#coordinator, SWARM_PROTOCOL, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    const messages = new JsonStream(stream)
    try {
      await messages.write({ type: 'swarm-hold', sha256 })
      const answer = await messages.read(swarmResponseSchema, REQUEST_TIMEOUT_MS)
      if (!answer.ok) throw new RefusedError(answer.code, answer.message)
    } finally {
      await messages.close().catch(() => {})
    }
  }

  /** Asks the coordinator whether `peerId` may have blob `sha256` (`swarm-member`). */
  async #isMember (sha256: string, peerId: string): Promise<boolean> {
    const stream = await this.#libp2p.dialProtocol(this.#coordinator, SWARM_PROTOCOL, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    const messages = new JsonStream(stream)
    try {
      await messages.write({ type: 'swarm-member', sha256, peerId })
      const answer = await messages.read(swarmResponseSchema, REQUEST_TIMEOUT_MS)
      if (!answer.ok) throw new RefusedError(answer.code, answer.message)
      return 'member' in answer && answer.member
    } finally {
      await messages.close().catch(() => {})
    }
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
   * The coordinator revoked these peers (its heartbeat reply lists them): what was remembered
   * of its word about them is dropped, so a request from one is asked about again (and
   * refused), and this agent's connections to them are closed. Returns those it had not heard
   * of already.
   */
  revoke (peerIds: readonly string[]): string[] {
    const own = this.#libp2p.peerId.toString()
    const others = peerIds.filter((id) => id !== own)
    // Forgotten first: a peer that dials again at once meets the question, not a remembered yes.
    const fresh = this.#permissions.forget(others)
    for (const id of others) {
      let peer: PeerId
      try {
        peer = peerIdFromString(id)
      } catch {
        continue
      }
      if (this.#libp2p.getConnections(peer).length === 0) continue
      this.#libp2p.hangUp(peer).catch((err: unknown) => { this.#log('could not close a revoked peer\'s connections', { peerId: id, err }) })
    }
    return fresh
  }

  /** Bytes sent to peers so far. */
  get sentBytes (): number {
    return this.#server.sentBytes
  }

  /** `swarm-member` questions put to the coordinator so far (what askers cost this agent's stream allowance). */
  get membershipQuestions (): number {
    return this.#permissions.asked
  }

  /**
   * Downloads blob `sha256` into `dest` (renamed there only once whole and verified). Throws
   * RefusedError when the coordinator refuses the blob, and any other error when neither the
   * peers nor the coordinator delivered it. `checkSize` is given the size the tracker announces
   * before anything is written or fetched; what it throws ends the fetch.
   */
  async fetch (sha256: string, dest: string, signal?: AbortSignal, checkSize?: (size: number) => void): Promise<void> {
    const swarm = await this.#askSwarm(sha256, signal)
    checkSize?.(swarm.size)
    const count = blockCount(swarm.size)
    const partial = `${dest}.swarm`
    const present = await this.#resume(partial, swarm.size, swarm.digests)
    this.#log('fetching from peers', { sha256, blocks: count, held: present.reduce((n, p) => n + p, 0), seed: swarm.seed, peers: swarm.peers.map((p) => p.peerId) })
    const file = await open(partial, 'r+')
    const held = this.index.register(sha256, swarm.size, count, partial, present)
    const fetchAbort = new AbortController()
    const stop = signal === undefined ? fetchAbort.signal : AbortSignal.any([signal, fetchAbort.signal])
    let lastProgress = Date.now()
    let missing = present.reduce((n, p) => n + (p === 1 ? 0 : 1), 0)
    /** Blocks the coordinator is sending this agent (its seed share, or the rest after a stall). */
    const reserved = new Uint8Array(count)
    const inFlight = new Uint8Array(count)
    let inFlightCount = 0
    const peers = new Map<string, PeerState>()
    let failure: Error | undefined
    let wake: () => void = () => {}
    const woken = async (ms: number): Promise<void> => {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms)
        wake = () => { clearTimeout(timer); resolve() }
      })
    }
    const own = this.#libp2p.peerId.toString()
    let unnamed = 0
    const addPeer = (id: PeerId, addrs: Multiaddr[] = []): void => {
      const key = id.toString()
      if (key === own) return
      const known = peers.get(key)
      if (known !== undefined) {
        if (known.addrs.length === 0) known.addrs = addrs
        return
      }
      // A peer that only announced itself counts against a small allowance: many identities
      // cost a stranger nothing, and each could hold request slots.
      if (addrs.length === 0 && unnamed++ >= MAX_UNNAMED_PEERS) return
      peers.set(key, { id, addrs, have: undefined, haveAt: 0, asking: false, inFlight: 0, failures: 0, dialFailures: 0, busyUntil: 0 })
      wake()
    }
    const trackerPeer = (p: SwarmPeer): void => {
      const addrs = dialableAddrs(p.addrs, this.#coordinatorIsPrivate)
      // The tracker names only members (they passed the coordinator's rule for this blob when
      // they joined): they are served without a question when they ask in return.
      this.#permissions.vouch(sha256, p.peerId)
      // Named only by addresses this agent will not dial: no peer at all, not an unnamed one.
      if (p.addrs.length > 0 && addrs.length === 0) return
      addPeer(peerIdFromString(p.peerId), addrs.map((a) => multiaddr(a.endsWith(`/p2p/${p.peerId}`) ? a : `${a}/p2p/${p.peerId}`)))
    }

    /** Writes a verified block once, whoever delivered it. */
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
      missing--
      wake()
    }
    const fromCoordinator = async (blocks: number[]): Promise<void> => {
      for (const b of blocks) reserved[b] = 1
      await this.#fromCoordinator(sha256, toBlockRanges(blocks), count, swarm.size, land, stop)
    }

    this.#fetching.set(sha256, addPeer)
    try {
      // A small blob (a tiny model's checkpoint, a report folded and dropped a moment later) costs
      // the coordinator little and is gone from peers soon: it comes from the coordinator whole.
      if (swarm.size <= SMALL_BLOB_BYTES) swarm.seed = [{ from: 0, to: count }]
      else for (const p of swarm.peers) trackerPeer(p)
      let coordinatorBusy = true
      const coordinatorDone = (): void => { coordinatorBusy = false; lastProgress = Date.now(); wake() }
      const fail = (err: unknown): void => { failure ??= err as Error; wake() }
      fromCoordinator(blocksInRanges(swarm.seed, count).filter((b) => present[b] === 0)).then(coordinatorDone, fail)
      let stalls = 0
      let trickled = false
      let available: Uint16Array = new Uint16Array(count)
      let availableAt = 0
      while (missing > 0 && failure === undefined && !stop.aborted) {
        const now = Date.now()
        // Recounted at most every AVAILABILITY_MS: bitfields change with every block a peer gets.
        if (now - availableAt >= AVAILABILITY_MS) {
          available = blockAvailability([...peers.values()].map((p) => p.have), count)
          availableAt = now
        }
        for (const peer of shuffled([...peers.values()])) {
          if (inFlightCount >= this.#maxInFlight) break
          if (peer.failures >= MAX_PEER_FAILURES || peer.busyUntil > now || peer.asking) continue
          const block = peer.have === undefined ? -1 : pickBlock(peer.have, present, reserved, inFlight, available)
          if (block < 0) {
            // It has nothing this agent needs that is not already on its way: ask again later.
            if (now - peer.haveAt >= HAVE_REFRESH_MS && peer.inFlight === 0) {
              peer.asking = true
              this.#askHave(peer, sha256, count, stop).finally(() => { peer.asking = false; wake() })
            }
            continue
          }
          while (peer.inFlight < this.#perPeer && inFlightCount < this.#maxInFlight) {
            const b = peer.have === undefined ? -1 : pickBlock(peer.have, present, reserved, inFlight, available)
            if (b < 0) break
            inFlight[b] = 1
            inFlightCount++
            peer.inFlight++
            this.#askBlock(peer, sha256, b, count, stop)
              .then(async (bytes) => {
                if (bytes === undefined) return
                // Checked here, so a peer sending wrong bytes is the one that fails.
                if (!sameDigest(bytes, swarm.digests, b)) throw new Error(`block ${b} does not match its digest`)
                peer.failures = 0
                await land(b, bytes, 'peer')
              })
              .catch((err: unknown) => {
                if (stop.aborted) return
                peer.failures++
                this.#log('a peer failed to deliver a block', { sha256, block: b, peerId: peer.id.toString(), err })
              })
              .finally(() => { inFlight[b] = 0; inFlightCount--; peer.inFlight--; wake() })
          }
        }
        // Nothing arriving and nothing asked of anyone: first the tracker is asked again (peers
        // that came since, blocks nobody took), then the coordinator gives everything missing.
        // The tracker is cheap to ask again: after a second of nothing. The coordinator's bytes are
        // what this saves: only after stallMs more. Requests in flight that land nothing for
        // stallMs and a block's whole time do not hold that off (peers that accept and trickle);
        // once they have stalled a fetch like that, they hold it off no longer than stallMs.
        const quiet = Date.now() - lastProgress
        const stalled = inFlightCount === 0
          ? quiet >= (stalls === 0 ? Math.min(REASK_MS, this.#stallMs) : this.#stallMs)
          : quiet >= this.#stallMs + (trickled ? 0 : this.#blockTimeoutMs)
        if (!coordinatorBusy && missing > 0 && stalled) {
          coordinatorBusy = true
          if (inFlightCount > 0) trickled = true
          if (stalls++ === 0) {
            this.#askSwarm(sha256, stop).then(async (again) => {
              this.#log('peers stalled; asked the tracker again', { sha256, seed: again.seed, peers: again.peers.map((p) => p.peerId) })
              for (const p of again.peers) trackerPeer(p)
              await fromCoordinator(blocksInRanges(again.seed, count).filter((b) => present[b] === 0))
            }).then(coordinatorDone, fail)
          } else {
            const rest: number[] = []
            for (let b = 0; b < count; b++) if (present[b] === 0) rest.push(b)
            this.#log('peers stalled again; taking the rest from the coordinator', { sha256, blocks: rest.length })
            fromCoordinator(rest).then(coordinatorDone, fail)
          }
        }
        await woken(200)
      }
      if (failure !== undefined) throw failure
      stop.throwIfAborted()
    } finally {
      this.#fetching.delete(sha256)
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

  /** Asks a peer which blocks of the blob it holds. */
  async #askHave (peer: PeerState, sha256: string, count: number, signal: AbortSignal): Promise<void> {
    peer.haveAt = Date.now()
    try {
      const stream = await this.#libp2p.dialProtocol(peer.addrs.length > 0 ? peer.addrs : peer.id, PEER_BLOCKS_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.any([signal, AbortSignal.timeout(this.#dialTimeoutMs)]) })
      const messages = new JsonStream(stream)
      try {
        await messages.write({ type: 'have', sha256 })
        const reply = await messages.read(peerBlockResponseSchema, REQUEST_TIMEOUT_MS)
        if (reply.ok) {
          peer.have = decodeBitfield(reply.have, count)
          peer.failures = 0
        } else if (reply.code === 'ERR_NOT_HELD') {
          peer.have = new Uint8Array(count)
        } else if (reply.code === 'ERR_BUSY') {
          // Checking askers with the coordinator as fast as it will: not the peer's failure.
          peer.busyUntil = Date.now() + HAVE_REFRESH_MS
        } else {
          peer.failures++
        }
      } finally {
        await messages.close().catch(() => {})
      }
    } catch (err) {
      if (signal.aborted) return
      peer.failures++
      this.#log('could not ask a peer what it holds', { sha256, peerId: peer.id.toString(), err })
    }
  }

  /** Asks a peer for one block; undefined when it turned out not to have it (or was busy). */
  async #askBlock (peer: PeerState, sha256: string, index: number, count: number, signal: AbortSignal): Promise<Uint8Array | undefined> {
    const within = AbortSignal.any([signal, AbortSignal.timeout(this.#blockTimeoutMs)])
    let stream
    try {
      stream = await this.#libp2p.dialProtocol(peer.addrs.length > 0 ? peer.addrs : peer.id, PEER_BLOCKS_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.any([within, AbortSignal.timeout(this.#dialTimeoutMs)]) })
    } catch (err) {
      // A relayed connection closes under a stream being opened when the two peers move to a
      // direct one (or the relay's limit ends it): not the peer's fault, ask again shortly.
      if (signal.aborted || ++peer.dialFailures >= MAX_DIAL_FAILURES) throw err
      peer.busyUntil = Date.now() + HAVE_REFRESH_MS
      return undefined
    }
    peer.dialFailures = 0
    // The block's deadline ends the stream itself, so a read waiting on a peer that trickles
    // bytes fails then, not a frame timeout later.
    const opened = stream
    const cut = (): void => { opened.abort(new Error(`block ${index} took longer than ${this.#blockTimeoutMs / 1000} s`)) }
    within.addEventListener('abort', cut, { once: true })
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    try {
      await messages.write({ type: 'block', sha256, index })
      const reply = await messages.read(peerBlockResponseSchema, REQUEST_TIMEOUT_MS)
      if (!reply.ok) {
        if (reply.code === 'ERR_BUSY') peer.busyUntil = Date.now() + HAVE_REFRESH_MS
        else if (reply.code === 'ERR_NOT_HELD' && peer.have !== undefined) peer.have[index] = 0
        else throw new Error(`${reply.code}: ${reply.message}`)
        return undefined
      }
      peer.have = decodeBitfield(reply.have, count)
      peer.haveAt = Date.now()
      const expected = Math.min(BLOB_BLOCK_BYTES, Math.max(0, (this.index.get(sha256)?.size ?? 0) - index * BLOB_BLOCK_BYTES))
      if (reply.bytes !== expected) throw new Error(`the peer announced ${reply.bytes ?? 'no'} bytes for block ${index}, not ${expected}`)
      const bytes = new Uint8Array(expected)
      let got = 0
      while (got < expected) {
        within.throwIfAborted()
        const frame = await messages.readFrame(CHUNK_TIMEOUT_MS)
        if (got + frame.byteLength > expected) throw new Error(`block ${index} from the peer is longer than announced`)
        bytes.set(frame, got)
        got += frame.byteLength
      }
      return bytes
    } finally {
      within.removeEventListener('abort', cut)
      await messages.close().catch(() => {})
    }
  }


  async #askSwarm (sha256: string, signal?: AbortSignal): Promise<{ size: number, digests: Uint8Array, peers: SwarmPeer[], seed: BlockRange[] }> {
    const stream = await this.#libp2p.dialProtocol(this.#coordinator, SWARM_PROTOCOL, { signal: signal ?? AbortSignal.timeout(TRANSFER_DIAL_TIMEOUT_MS) })
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    try {
      await messages.write({ type: 'swarm', sha256 })
      const header = await messages.read(swarmResponseSchema, BLOB_HEADER_TIMEOUT_MS)
      if (!header.ok) throw new RefusedError(header.code, header.message)
      if (!('blockCount' in header)) throw new Error('the coordinator answered a question that was not asked')
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

/** A random order, so agents spread their asks over their peers. */
function shuffled<T> (items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}

async function fileSha256 (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/**
 * The tracker's addresses for a peer that this agent dials: the tracker is the coordinator's
 * word, and an address on the volunteer's own network (192.168.1.1, 169.254.169.254, loopback)
 * would turn its agent into a port scanner there. Those are dropped unless the coordinator
 * itself is on such a network, and so are DNS names (they could resolve there) except in a
 * relay circuit; so is anything but ip4/ip6 over tcp, or a relay circuit.
 */
export function dialableAddrs (addrs: readonly string[], privateAllowed: boolean): string[] {
  return addrs.filter((text) => {
    let components
    try {
      components = multiaddr(text).getComponents()
    } catch {
      return false
    }
    const host = components[0]
    if (host === undefined || !['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(host.name) || host.value === undefined) return false
    const relayed = components.some((c) => c.name === 'p2p-circuit')
    // A name could resolve to anything; only a relay (the coordinator's own address) may be one.
    if (host.name.startsWith('dns') && !relayed && !privateAllowed) return false
    if (!privateAllowed && namesPrivateHost(host.value)) return false
    return components[1]?.name === 'tcp' || relayed
  })
}

const HOST_PROTOCOLS = ['ip4', 'ip6', 'dns', 'dns4', 'dns6']

/** Whether the coordinator's address is on a private or loopback network (a lab's own, a test): its peers may be there too. */
export function onPrivateNetwork (coordinator: Multiaddr): boolean {
  return coordinator.getComponents().some((c) => HOST_PROTOCOLS.includes(c.name) && c.value !== undefined && namesPrivateHost(c.value))
}

/**
 * Whether the agent's host may dial `address` at all (its connection gater, `host.ts`): the
 * coordinator's own host, or what `dialableAddrs` lets through. The tracker is not the only
 * source of addresses: a peer's identify message fills the peer store (an unnamed peer is
 * dialled by its id from there) and hole punching (DCUtR) dials the addresses the other side
 * sends, DNS names included, so a peer could otherwise aim this agent at 192.168.1.1 or at a
 * name that resolves to 169.254.169.254.
 */
export function mayDial (address: Multiaddr, coordinator: Multiaddr): boolean {
  if (onPrivateNetwork(coordinator)) return true
  const host = address.getComponents()[0]
  // A circuit named by the relay's peer id alone: the dial to the relay is gated in its turn.
  if (host === undefined || !HOST_PROTOCOLS.includes(host.name)) return host?.name === 'p2p' || host?.name === 'p2p-circuit'
  const own = coordinator.getComponents()[0]
  if (own !== undefined && own.name === host.name && own.value !== undefined && own.value.toLowerCase() === host.value?.toLowerCase()) return true
  return dialableAddrs([address.toString()], false).length > 0
}

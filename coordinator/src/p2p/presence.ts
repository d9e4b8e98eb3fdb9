import type { Libp2p } from '@libp2p/interface'
import type { ExecutorKind } from '@barnraise/protocol'

export interface PeerPresence {
  status: string
  /** When it last heartbeated (its enrollment counts as its first). */
  lastHeartbeatAt: Date
  /**
   * When it last enrolled, heartbeated or asked for work: what a node has to keep doing to be
   * handed units (isLive). An open connection costs nothing to keep, and a node given units it
   * never works on holds each of those rounds open until its deadline.
   */
  lastActiveAt: Date
  /**
   * The executor its latest work request named (older agents name none). Only which scoring
   * tasks it is offered depends on it (rounds/node-scoring.ts), and a node that names one it
   * lacks only refuses those tasks: the claim needs no proof.
   */
  executor?: ExecutorKind
}

/**
 * How recently a node must have enrolled, heartbeated or asked for work to be handed units. An
 * agent heartbeats every 10 s by default (`--heartbeat-interval`) and an idle one asks for work
 * at least every 10 s (rounds/wait-poll.ts): three missed heartbeats.
 */
export const LIVENESS_MS = 30_000

/**
 * Which peers are connected right now and what they last said they were doing. It lives in
 * memory on purpose: online status is a fact about live connections, not about the database.
 */
export class Presence {
  readonly #peers = new Map<string, PeerPresence>()
  readonly #listeners = new Set<() => void>()
  readonly #libp2p: Libp2p

  constructor (libp2p: Libp2p) {
    this.#libp2p = libp2p
    libp2p.addEventListener('peer:disconnect', (evt) => {
      // Only a node that said hello changes what anyone sees; any peer can connect and leave.
      if (this.#peers.delete(evt.detail.toString())) this.#notify()
    })
  }

  /** Records a heartbeat from a peer. */
  heartbeat (peerId: string, status: string): void {
    // Called after an await: a peer that left meanwhile had its disconnect already, and would stay listed.
    if (!this.isOnline(peerId)) return
    const previous = this.#peers.get(peerId)
    const now = new Date()
    this.#peers.set(peerId, { status, lastHeartbeatAt: now, lastActiveAt: now, ...(previous?.executor !== undefined ? { executor: previous.executor } : {}) })
    if (previous?.status !== status) this.#notify()
  }

  /** Marks a peer as present right after enrollment. */
  joined (peerId: string): void {
    this.heartbeat(peerId, 'idle')
    this.#notify()
  }

  /** Records an enrolled node's work request: it is active (and present, if it had not said so yet), with the executor it named. */
  askedForWork (peerId: string, executor?: ExecutorKind): void {
    if (!this.isOnline(peerId)) return
    const previous = this.#peers.get(peerId)
    const now = new Date()
    this.#peers.set(peerId, { status: previous?.status ?? 'idle', lastHeartbeatAt: previous?.lastHeartbeatAt ?? now, lastActiveAt: now, ...(executor !== undefined ? { executor } : {}) })
    if (previous === undefined) this.#notify()
  }

  /** The executor the peer's latest work request named, if it named one. */
  executorOf (peerId: string): ExecutorKind | undefined {
    return this.#peers.get(peerId)?.executor
  }

  /** True while the peer holds a connection to us. */
  isOnline (peerId: string): boolean {
    return this.#libp2p.getConnections().some((c) => c.remotePeer.toString() === peerId && c.status === 'open')
  }

  /**
   * True while the peer holds a connection and enrolled, heartbeated or asked for work (on this
   * connection or one before it with no gap) within LIVENESS_MS: a node the round engine may hand
   * a unit. A connection alone is not enough.
   */
  isLive (peerId: string, now = Date.now()): boolean {
    const active = this.#peers.get(peerId)?.lastActiveAt
    return active !== undefined && now - active.getTime() <= LIVENESS_MS && this.isOnline(peerId)
  }

  /** Every peer isLive holds true for: what the round engine and node scoring ask the database about, rather than every node. */
  livePeers (now = Date.now()): string[] {
    const connected = new Set(this.#libp2p.getConnections().filter((c) => c.status === 'open').map((c) => c.remotePeer.toString()))
    return [...this.#peers].filter(([peerId, p]) => now - p.lastActiveAt.getTime() <= LIVENESS_MS && connected.has(peerId)).map(([peerId]) => peerId)
  }

  /** Peers that said hello (enrolled, heartbeated or asked for work) and still hold an open connection. */
  onlineCount (): number {
    const connected = new Set(this.#libp2p.getConnections().filter((c) => c.status === 'open').map((c) => c.remotePeer.toString()))
    let n = 0
    for (const peerId of this.#peers.keys()) if (connected.has(peerId)) n++
    return n
  }

  /** Closes every connection to a peer (a revoked node). */
  disconnect (peerId: string): void {
    for (const c of this.#libp2p.getConnections()) {
      if (c.remotePeer.toString() === peerId) void c.close().catch(() => { c.abort(new Error('revoked')) })
    }
  }

  get (peerId: string): PeerPresence | undefined {
    return this.#peers.get(peerId)
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  onChange (listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  #notify (): void {
    for (const l of this.#listeners) l()
  }
}

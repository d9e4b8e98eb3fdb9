import { toBlockRanges } from '@barnraise/protocol'
import type { BlockRange } from '@barnraise/protocol'

/** The most blobs tracked at once; the least recently asked is forgotten first. */
const MAX_SWARMS = 256
/** Peers handed to one asker. */
const MAX_PEERS = 16
/** A member this long without asking again is no longer offered (it may have dropped the blob). */
const MEMBER_TTL_MS = 30 * 60_000
/** How long after a blob's first ask shares are kept for the other nodes whose units name it. */
const RESERVE_MS = 10_000
/** swarmResponseSchema's cap on seed ranges. */
const MAX_SEED_RANGES = 256

interface Member {
  joinedAt: number
  /** when it last asked (join), or said it holds the blob (hold) */
  seenAt: number
  /** said it holds the whole blob (swarm-hold) rather than asked for it */
  holder?: boolean
}

interface Swarm {
  members: Map<string, Member>
  /** Which member was told to take each block from the coordinator (undefined: nobody yet). */
  seededBy: Array<string | undefined>
  lastAskedAt: number
  createdAt: number
}

export interface SwarmJoin {
  /** Other members, earliest first: they are the likeliest to hold the whole blob. */
  peers: string[]
  /** The blocks this peer takes from the coordinator. */
  seed: BlockRange[]
}

/**
 * Who asked for which blob, in memory (it is a hint, rebuilt as agents ask, and lost on a
 * restart at no cost but some extra coordinator egress). Each block of a blob is given to one
 * member to take from the coordinator; the others get it from that member (or one that has it since). A
 * member that went offline gives its blocks back for the next asker.
 */
export class SwarmTracker {
  readonly #swarms = new Map<string, Swarm>()
  readonly #isOnline: (peerId: string) => boolean
  readonly #now: () => number

  constructor (o: { isOnline: (peerId: string) => boolean, now?: () => number }) {
    this.#isOnline = o.isOnline
    this.#now = o.now ?? Date.now
  }

  /**
   * Adds `peerId` to the blob's swarm and says which peers to ask and which blocks to take
   * from the coordinator: an equal share of the blocks nobody was given yet among the
   * `expectedFetchers` (the nodes whose open units name the blob) not yet in the swarm.
   */
  join (sha256: string, peerId: string, blockCount: number, expectedFetchers: number): SwarmJoin {
    const now = this.#now()
    const swarm = this.#touch(sha256, blockCount, now)

    this.#prune(swarm, peerId, now)
    const again = swarm.members.get(peerId)
    const others = swarm.members.size - (again === undefined ? 0 : 1)
    // Nobody else holds any of it: whatever was handed out is the asker's to take.
    if (others === 0) for (let b = 0; b < blockCount; b++) if (swarm.seededBy[b] !== peerId) swarm.seededBy[b] = undefined
    const peers = [...swarm.members.entries()].filter(([id]) => id !== peerId)
      .sort((a, b) => a[1].joinedAt - b[1].joinedAt).slice(0, MAX_PEERS).map(([id]) => id)
    // A member asking again got nothing from its peers for a while: blocks claimed by a holder
    // it was already told of are free to it, since an honest holder serves in milliseconds and a
    // liar must not stall it more. A holder that came since its last ask is a new peer to try.
    if (again !== undefined) {
      for (let b = 0; b < blockCount; b++) {
        const by = swarm.seededBy[b]
        const holder = by === undefined || by === peerId ? undefined : swarm.members.get(by)
        if (holder?.holder === true && holder.seenAt <= again.seenAt) swarm.seededBy[b] = undefined
      }
    }
    const free: number[] = []
    for (let b = 0; b < blockCount; b++) if (swarm.seededBy[b] === undefined) free.push(b)
    // Shares are kept for the nodes expected only while a swarm is young (they ask together when
    // a round opens). A member asking again has waited on its peers in vain, and a late asker
    // comes when the others have asked or never will (they rebuilt the blob themselves): blocks
    // nobody took are theirs.
    const young = now - swarm.createdAt < RESERVE_MS
    const stillToCome = again !== undefined || !young ? 1 : Math.max(1, expectedFetchers - others)
    for (const b of free.slice(0, Math.ceil(free.length / stillToCome))) swarm.seededBy[b] = peerId
    const own: number[] = []
    for (let b = 0; b < blockCount; b++) if (swarm.seededBy[b] === peerId) own.push(b)
    // A fragmented share is cut to what one reply may carry; the rest waits for the next asker.
    const seed = toBlockRanges(own).slice(0, MAX_SEED_RANGES)
    const kept = new Set(seed.flatMap((r) => Array.from({ length: r.to - r.from }, (_, i) => r.from + i)))
    for (const b of own) if (!kept.has(b)) swarm.seededBy[b] = undefined
    swarm.members.set(peerId, { joinedAt: again?.joinedAt ?? now, seenAt: now, ...(again?.holder === true ? { holder: true } : {}) })
    return { peers, seed }
  }

  /**
   * `peerId` holds the whole blob (it made it, or fetched it outside the swarm): it becomes a
   * member, offered to later askers, and the blocks nobody was given are its, so askers take
   * them from it rather than from the coordinator. Shares already given stay with their holders.
   */
  hold (sha256: string, peerId: string, blockCount: number): void {
    const now = this.#now()
    const swarm = this.#touch(sha256, blockCount, now)
    // Blocks of members gone offline are free again: the holder has them too.
    this.#prune(swarm, peerId, now)
    for (let b = 0; b < blockCount; b++) swarm.seededBy[b] ??= peerId
    swarm.members.set(peerId, { joinedAt: swarm.members.get(peerId)?.joinedAt ?? now, seenAt: now, holder: true })
  }

  /**
   * The peer no longer holds the blob (its cache dropped it): it is no longer offered, and the
   * blocks it was given go back, since nobody may have fetched them from it.
   */
  leave (sha256: string, peerId: string): void {
    const swarm = this.#swarms.get(sha256)
    if (swarm === undefined) return
    swarm.members.delete(peerId)
    this.#release(swarm, peerId)
    if (swarm.members.size === 0) this.#swarms.delete(sha256)
  }

  /** The blob's swarm (a new one if its size changed), now the most recently asked; the least recent beyond MAX_SWARMS go. */
  #touch (sha256: string, blockCount: number, now: number): Swarm {
    let swarm = this.#swarms.get(sha256)
    if (swarm === undefined || swarm.seededBy.length !== blockCount) {
      swarm = { members: new Map(), seededBy: new Array<string | undefined>(blockCount).fill(undefined), lastAskedAt: now, createdAt: now }
    }
    this.#swarms.delete(sha256)
    this.#swarms.set(sha256, swarm)
    swarm.lastAskedAt = now
    while (this.#swarms.size > MAX_SWARMS) this.#swarms.delete(this.#swarms.keys().next().value as string)
    return swarm
  }

  /** Drops members other than `keep` that went offline (their blocks go back) or were not heard from in MEMBER_TTL_MS. */
  #prune (swarm: Swarm, keep: string, now: number): void {
    for (const [id, member] of swarm.members) {
      if (id === keep) continue
      const gone = !this.#isOnline(id)
      if (gone || now - member.joinedAt > MEMBER_TTL_MS) swarm.members.delete(id)
      if (gone) this.#release(swarm, id)
    }
  }

  #release (swarm: Swarm, peerId: string): void {
    for (let b = 0; b < swarm.seededBy.length; b++) if (swarm.seededBy[b] === peerId) swarm.seededBy[b] = undefined
  }

  /** Forgets a peer everywhere (revoked): its blocks go to the next askers. */
  forget (peerId: string): void {
    for (const swarm of this.#swarms.values()) {
      swarm.members.delete(peerId)
      this.#release(swarm, peerId)
    }
  }

  /** How many blobs are tracked (for tests and the scaling notes). */
  get size (): number {
    return this.#swarms.size
  }
}

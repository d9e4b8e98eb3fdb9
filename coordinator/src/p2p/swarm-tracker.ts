import type { BlockRange } from '@barnraise/protocol'

/** The most blobs tracked at once; the least recently asked is forgotten first. */
const MAX_SWARMS = 256
/** Peers handed to one asker. */
const MAX_PEERS = 16
/** A member this long without asking again is no longer offered (it may have dropped the blob). */
const MEMBER_TTL_MS = 30 * 60_000
/** swarmResponseSchema's cap on seed ranges. */
const MAX_SEED_RANGES = 256

interface Member {
  joinedAt: number
}

interface Swarm {
  members: Map<string, Member>
  /** Which member was told to take each block from the coordinator (undefined: nobody yet). */
  seededBy: Array<string | undefined>
  lastAskedAt: number
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
 * member to take from the coordinator; the others get it from that member over Bitswap. A
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
    let swarm = this.#swarms.get(sha256)
    if (swarm === undefined || swarm.seededBy.length !== blockCount) {
      swarm = { members: new Map(), seededBy: new Array<string | undefined>(blockCount).fill(undefined), lastAskedAt: now }
    }
    this.#swarms.delete(sha256)
    this.#swarms.set(sha256, swarm)
    swarm.lastAskedAt = now
    while (this.#swarms.size > MAX_SWARMS) this.#swarms.delete(this.#swarms.keys().next().value as string)

    for (const [id, member] of swarm.members) {
      const gone = !this.#isOnline(id)
      if (gone || now - member.joinedAt > MEMBER_TTL_MS || id === peerId) swarm.members.delete(id)
      // An asker that asks again (it restarted) gets a fresh share; one that left gives its share back.
      if (gone || id === peerId) for (let b = 0; b < blockCount; b++) if (swarm.seededBy[b] === id) swarm.seededBy[b] = undefined
    }
    const peers = [...swarm.members.entries()].sort((a, b) => a[1].joinedAt - b[1].joinedAt).slice(0, MAX_PEERS).map(([id]) => id)
    const free: number[] = []
    for (let b = 0; b < blockCount; b++) if (swarm.seededBy[b] === undefined) free.push(b)
    const stillToCome = Math.max(1, expectedFetchers - swarm.members.size)
    // A fragmented share is cut to what one reply may carry; the rest waits for the next asker.
    const seed = toRanges(free.slice(0, Math.ceil(free.length / stillToCome))).slice(0, MAX_SEED_RANGES)
    for (const range of seed) for (let b = range.from; b < range.to; b++) swarm.seededBy[b] = peerId
    swarm.members.set(peerId, { joinedAt: now })
    return { peers, seed }
  }

  /** Forgets a peer everywhere (revoked): its blocks go to the next askers. */
  forget (peerId: string): void {
    for (const swarm of this.#swarms.values()) {
      swarm.members.delete(peerId)
      for (let b = 0; b < swarm.seededBy.length; b++) if (swarm.seededBy[b] === peerId) swarm.seededBy[b] = undefined
    }
  }

  /** How many blobs are tracked (for tests and the scaling notes). */
  get size (): number {
    return this.#swarms.size
  }
}

/** Sorted block indices as [from, to) ranges. */
export function toRanges (blocks: number[]): BlockRange[] {
  const ranges: BlockRange[] = []
  for (const b of blocks) {
    const last = ranges.at(-1)
    if (last !== undefined && last.to === b) last.to = b + 1
    else ranges.push({ from: b, to: b + 1 })
  }
  return ranges
}

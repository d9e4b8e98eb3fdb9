// Whether a peer may have a blob, by the coordinator's word (`swarm-member`), remembered for a
// minute: a peer asks for a blob block by block, and the coordinator need not be asked each
// time. A blob's sha256 is public (run specs list their shards), so a holder serves only peers
// the coordinator vouches for, as the coordinator itself would serve them.
//
// Each question is a stream from this agent to the coordinator, counted against this agent's own
// stream allowance there (a few concurrent swarm streams, a rate after a burst). Peer ids cost a
// stranger nothing, so the questions a stranger can cause are budgeted here, before any is put:
// at most a few in flight and a few a second in all, and a smaller rate per address the askers
// connect from. Past the budget the asker is told to come back (busy), nothing is asked, and the
// agent's own heartbeats, swarm requests and uploads keep their allowance.

import { KeyedTokenBuckets, TokenBucket } from '@barnraise/protocol'

/** How long the coordinator's yes is trusted: about a round, so a revoked node soon loses it. */
const REMEMBER_MS = 60_000
/** How long a no is remembered: short, as a node may be handed a unit naming the blob a moment later. */
const REMEMBER_NO_MS = 10_000
/** How long a question that failed (coordinator unreachable, refused) refuses that peer without asking again. */
const REMEMBER_ERROR_MS = 5_000
/** Answers kept at once; the oldest go first. */
const MAX_ANSWERS = 4096
/** Sources (addresses) whose budgets are kept at once; a source forgotten starts with a full bucket. */
const MAX_SOURCES = 1024
/**
 * How long after the coordinator last listed a peer as revoked (`forget`) a tracker's vouch for
 * it is not trusted: a swarm answer given before the revocation may arrive after it. The
 * coordinator lists a revocation for minutes, so this runs from the last heartbeat naming it.
 */
const DISTRUST_MS = 60_000
/** Revoked peers whose vouches are ignored, kept at once; the oldest go first. */
const MAX_FORGOTTEN = 1024

/** How many questions the coordinator may be asked, and how fast. */
export interface QuestionBudget {
  /** Questions in flight at once: the coordinator takes 4 concurrent swarm streams from this agent, and its own requests need some. */
  maxInFlight: number
  /** Questions a second in all, after a first `burst`: far below the coordinator's 100 a second for this agent's streams. */
  perSecond: number
  burst: number
  /** Questions a second caused by askers from one source (an IP address, an IPv6 /48, a relayed peer), after `sourceBurst`. */
  sourcePerSecond: number
  sourceBurst: number
}

/**
 * The default budget. A swarm's honest questions come once a minute per peer and blob: a holder
 * of a blob 20 agents fetch is asked about at most 19 peers (fewer: peers the tracker named are
 * not asked about), well within the burst; askers told busy ask again half a second later.
 */
export const DEFAULT_QUESTION_BUDGET: QuestionBudget = { maxInFlight: 2, perSecond: 4, burst: 32, sourcePerSecond: 2, sourceBurst: 24 }

/** The verdict on one request: serve, refuse (as if the blob were not held), or busy (ask again later). */
export type Permission = 'allowed' | 'refused' | 'busy'

/** The coordinator's answers about which peers may have which blobs, and the budget for asking. */
export class PeerPermissions {
  readonly #ask: (sha256: string, peerId: string) => Promise<boolean>
  readonly #now: () => number
  readonly #budget: QuestionBudget
  readonly #answers = new Map<string, { allowed: Promise<boolean>, until: number }>()
  readonly #all: TokenBucket
  readonly #sources: KeyedTokenBuckets
  /** Peers the coordinator revoked lately, until when a vouch for them is ignored; oldest first. */
  readonly #forgotten = new Map<string, number>()
  /** Calls to `forget` that named a peer not forgotten already: a question put before one may have been answered before a revocation. */
  #forgets = 0
  #inFlight = 0
  /** Questions put to the coordinator so far. */
  asked = 0

  /** `ask` puts the question to the coordinator; it may throw (then the peer is refused for a few seconds). */
  constructor (ask: (sha256: string, peerId: string) => Promise<boolean>, now: () => number = Date.now, budget: QuestionBudget = DEFAULT_QUESTION_BUDGET) {
    this.#ask = ask
    this.#now = now
    this.#budget = budget
    this.#all = new TokenBucket({ perSecond: budget.perSecond, capacity: budget.burst }, now())
    this.#sources = new KeyedTokenBuckets({ perSecond: budget.sourcePerSecond, capacity: budget.sourceBurst, maxKeys: MAX_SOURCES })
  }

  /**
   * The tracker named `peerId` for blob `sha256`: it passed the coordinator's rule when it
   * joined the blob's swarm, so it is served without asking for as long as a yes is trusted.
   */
  vouch (sha256: string, peerId: string): void {
    // The tracker's answer may predate the peer's revocation: the coordinator is asked instead.
    if (this.#distrusts(peerId)) return
    const key = `${sha256}/${peerId}`
    const known = this.#answers.get(key)
    // A no heard since stands; a yes (or nothing) is renewed.
    if (known !== undefined && known.until > this.#now()) {
      void known.allowed.then((yes) => { if (yes && !this.#distrusts(peerId)) this.#remember(key, Promise.resolve(true), REMEMBER_MS) })
      return
    }
    this.#remember(key, Promise.resolve(true), REMEMBER_MS)
  }

  /**
   * Whether `peerId`, connected from `source`, may have blob `sha256`. A remembered answer is
   * given at once. Otherwise the question costs budget, whether or not the blob is `held`, so
   * "busy" says nothing about what this agent holds; it is put to the coordinator only for a
   * held blob.
   */
  async check (sha256: string, peerId: string, source: string, held: boolean): Promise<Permission> {
    const key = `${sha256}/${peerId}`
    const now = this.#now()
    const known = this.#answers.get(key)
    if (known !== undefined && known.until > now) return await known.allowed ? 'allowed' : 'refused'
    if (known !== undefined) this.#answers.delete(key)
    const bucket = this.#sources.get(source, now)
    if (this.#inFlight >= this.#budget.maxInFlight || this.#all.available(now) < 1 || bucket.available(now) < 1) return 'busy'
    this.#all.take(now)
    bucket.take(now)
    if (!held) return 'refused'
    this.#inFlight++
    this.asked++
    // One question for peers asking at once: the others wait on it at no cost.
    const forgets = this.#forgets
    const allowed = this.#ask(sha256, peerId).then((answer) => {
      // A yes to a question put before the peer was forgotten may predate its revocation.
      const yes = answer && !(forgets !== this.#forgets && this.#distrusts(peerId))
      this.#remember(key, allowed, yes ? REMEMBER_MS : REMEMBER_NO_MS)
      return yes
    }, () => {
      this.#remember(key, allowed, REMEMBER_ERROR_MS)
      return false
    }).finally(() => { this.#inFlight-- })
    this.#remember(key, allowed, REMEMBER_MS)
    return await allowed ? 'allowed' : 'refused'
  }

  /**
   * The coordinator revoked these peers (its heartbeat reply lists them): every answer
   * remembered for them is dropped and, for a while, a tracker's vouch for them is ignored, so
   * the next request from one is asked about again (and the coordinator says no). Returns those
   * not already forgotten.
   */
  forget (peerIds: Iterable<string>): string[] {
    const now = this.#now()
    // Ordered by when last forgotten, so those whose time is up are at the front.
    for (const [peerId, until] of this.#forgotten) {
      if (until > now) break
      this.#forgotten.delete(peerId)
    }
    const fresh = new Set<string>()
    for (const peerId of peerIds) {
      if (!this.#forgotten.has(peerId)) fresh.add(peerId)
      this.#forgotten.delete(peerId)
      this.#forgotten.set(peerId, now + DISTRUST_MS)
      if (this.#forgotten.size > MAX_FORGOTTEN) this.#forgotten.delete(this.#forgotten.keys().next().value!)
    }
    // A peer still forgotten since an earlier call has no answer but the coordinator's since
    // then (a no): the same list heard again each heartbeat drops nothing and asks nothing again.
    if (fresh.size === 0) return []
    this.#forgets++
    // Keys are `${sha256}/${peerId}`, and neither holds a slash.
    for (const key of this.#answers.keys()) {
      if (fresh.has(key.slice(key.indexOf('/') + 1))) this.#answers.delete(key)
    }
    return [...fresh]
  }

  /** Whether `peerId` was forgotten lately: a vouch for it is ignored. */
  #distrusts (peerId: string): boolean {
    const until = this.#forgotten.get(peerId)
    return until !== undefined && until > this.#now()
  }

  #remember (key: string, allowed: Promise<boolean>, forMs: number): void {
    this.#answers.delete(key)
    this.#answers.set(key, { allowed, until: this.#now() + forMs })
    if (this.#answers.size > MAX_ANSWERS) this.#answers.delete(this.#answers.keys().next().value!)
  }
}

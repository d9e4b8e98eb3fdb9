import type { Kysely } from 'kysely'
import { MAX_REVOKED_PEER_ID_CHARS } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'

// Agents remember the coordinator's "yes, this peer may have blob X" for a minute
// (node-agent/src/peers/peer-permissions.ts). Every heartbeat reply lists the peers revoked
// lately, so a revoked node stops being served blocks within a heartbeat, not a minute later.

/**
 * How long a revocation is listed: three times an agent's remembered yes (60 s), so an agent
 * whose heartbeats failed for a while (backing off up to a minute) still hears of it before its
 * yes would have run out on its own.
 */
export const REVOCATION_WINDOW_MS = 3 * 60_000
/** Revocations kept at once; the oldest go first (an agent's remembered yes still runs out for those). */
export const MAX_REVOCATIONS = 1024

export interface RecentRevocationsOptions {
  windowMs?: number
  max?: number
  now?: () => number
}

/**
 * The peer ids revoked in the last few minutes, in memory: read on every heartbeat, so listing
 * them costs no database query. Filled by the revoke mutation and, at start, from the database
 * (`load`), so a coordinator restarted right after a revocation still tells the agents.
 */
export class RecentRevocations {
  readonly #windowMs: number
  readonly #max: number
  readonly #now: () => number
  /** When each peer was revoked, oldest first (Map order: a peer revoked again moves to the end). */
  readonly #at = new Map<string, number>()

  constructor (options: RecentRevocationsOptions = {}) {
    this.#windowMs = options.windowMs ?? REVOCATION_WINDOW_MS
    this.#max = options.max ?? MAX_REVOCATIONS
    this.#now = options.now ?? Date.now
  }

  /** A record filled with the nodes revoked within the window, by `revoked_at` (the newest `max` of them). */
  static async load (db: Kysely<Database>, options: RecentRevocationsOptions = {}): Promise<RecentRevocations> {
    const record = new RecentRevocations(options)
    const rows = await db.selectFrom('nodes').select(['peer_id', 'revoked_at'])
      .where('revoked_at', '>', new Date(record.#now() - record.#windowMs))
      .orderBy('revoked_at', 'desc').limit(record.#max).execute()
    for (const row of rows.reverse()) if (row.revoked_at !== null) record.add(row.peer_id, row.revoked_at.getTime())
    return record
  }

  /** Records that `peerId` was revoked at `at` (now by default); a revocation is expected to come after those recorded. */
  add (peerId: string, at: number = this.#now()): void {
    // Every id listed must pass the heartbeat reply's schema, or agents drop the whole list; a
    // real peer id is far shorter, so this never drops one.
    if (peerId.length === 0 || peerId.length > MAX_REVOKED_PEER_ID_CHARS) return
    this.#at.delete(peerId)
    this.#at.set(peerId, at)
    if (this.#at.size > this.#max) this.#at.delete(this.#at.keys().next().value!)
    this.#prune()
  }

  /** The peer ids revoked within the window, newest first, at most `max` of them. */
  list (max: number = Infinity): string[] {
    this.#prune()
    if (this.#at.size === 0) return []
    const since = this.#now() - this.#windowMs
    const entries = [...this.#at]
    const out: string[] = []
    for (let i = entries.length - 1; i >= 0 && out.length < max; i--) {
      const [peerId, at] = entries[i]!
      if (at > since) out.push(peerId)
    }
    return out
  }

  /** Drops revocations older than the window, from the oldest on. */
  #prune (): void {
    const since = this.#now() - this.#windowMs
    for (const [peerId, at] of this.#at) {
      if (at > since) break
      this.#at.delete(peerId)
    }
  }
}

import { KeyedTokenBuckets } from '@barnraise/protocol'

/**
 * Bounds how fast one peer can be refused: each refusal takes a token from the peer's bucket,
 * which refills slowly; a peer with an empty bucket is turned away before any database work,
 * and its reports write no ledger rows. Memory is bounded by forgetting the oldest peers.
 */
export class RefusalLimiter {
  readonly #buckets: KeyedTokenBuckets

  constructor (options: { capacity?: number, refillPerSecond?: number, maxPeers?: number } = {}) {
    this.#buckets = new KeyedTokenBuckets({ capacity: options.capacity ?? 20, perSecond: options.refillPerSecond ?? 1 / 3, maxKeys: options.maxPeers ?? 10_000 })
  }

  /** True when the peer has used up its refusals for now. */
  exhausted (peerId: string, now = Date.now()): boolean {
    const bucket = this.#buckets.peek(peerId)
    return bucket !== undefined && bucket.available(now) < 1
  }

  /** Counts one refusal against the peer. */
  spend (peerId: string, now = Date.now()): void {
    this.#buckets.get(peerId, now).spend(now)
  }
}

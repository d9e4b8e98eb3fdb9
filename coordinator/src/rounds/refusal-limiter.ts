/**
 * Bounds how fast one peer can be refused: each refusal takes a token from the peer's bucket,
 * which refills slowly; a peer with an empty bucket is turned away before any database work,
 * and its reports write no ledger rows. Memory is bounded by forgetting the oldest peers.
 */
export class RefusalLimiter {
  readonly #capacity: number
  readonly #refillPerSecond: number
  readonly #maxPeers: number
  readonly #buckets = new Map<string, { tokens: number, at: number }>()

  constructor (options: { capacity?: number, refillPerSecond?: number, maxPeers?: number } = {}) {
    this.#capacity = options.capacity ?? 20
    this.#refillPerSecond = options.refillPerSecond ?? 1 / 3
    this.#maxPeers = options.maxPeers ?? 10_000
  }

  #bucket (peerId: string, now: number): { tokens: number, at: number } {
    const bucket = this.#buckets.get(peerId) ?? { tokens: this.#capacity, at: now }
    bucket.tokens = Math.min(this.#capacity, bucket.tokens + (now - bucket.at) / 1000 * this.#refillPerSecond)
    bucket.at = now
    return bucket
  }

  /** True when the peer has used up its refusals for now. */
  exhausted (peerId: string, now = Date.now()): boolean {
    if (!this.#buckets.has(peerId)) return false
    return this.#bucket(peerId, now).tokens < 1
  }

  /** Counts one refusal against the peer. */
  spend (peerId: string, now = Date.now()): void {
    const bucket = this.#bucket(peerId, now)
    bucket.tokens = Math.max(0, bucket.tokens - 1)
    this.#buckets.delete(peerId)
    this.#buckets.set(peerId, bucket)
    if (this.#buckets.size > this.#maxPeers) this.#buckets.delete(this.#buckets.keys().next().value!)
  }
}

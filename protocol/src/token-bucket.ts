// Token buckets: the one rate rule shared by the coordinator's stream allowance and refusal
// budget and the agent's budget for membership questions. A bucket holds up to `capacity`
// tokens and refills at `perSecond`; an action that finds a whole token takes it.

/** How a bucket fills: up to `capacity` tokens, `perSecond` more each second. */
export interface TokenRate {
  perSecond: number
  capacity: number
}

/** One bucket, starting full. Times are milliseconds on any clock that the caller keeps using. */
export class TokenBucket {
  readonly #rate: TokenRate
  #tokens: number
  #at: number

  constructor (rate: TokenRate, now: number) {
    this.#rate = rate
    this.#tokens = rate.capacity
    this.#at = now
  }

  /** The tokens held at `now` (fractional); a clock that steps back refills nothing. */
  available (now: number): number {
    this.#tokens = Math.min(this.#rate.capacity, this.#tokens + Math.max(0, now - this.#at) / 1000 * this.#rate.perSecond)
    this.#at = Math.max(this.#at, now)
    return this.#tokens
  }

  /** Takes one token when a whole one is there; false (and nothing taken) otherwise. */
  take (now: number): boolean {
    if (this.available(now) < 1) return false
    this.#tokens -= 1
    return true
  }

  /** Counts one use whether or not a token is there (never below empty): for what already happened. */
  spend (now: number): void {
    this.#tokens = Math.max(0, this.available(now) - 1)
  }
}

/**
 * A bucket per key (a peer id, an address). Memory is bounded by forgetting the least recently
 * used keys past `maxKeys`; a forgotten key starts again with a full bucket, so `maxKeys` must
 * be well above the keys an honest load uses at once.
 */
export class KeyedTokenBuckets {
  readonly #rate: TokenRate
  readonly #maxKeys: number
  readonly #buckets = new Map<string, TokenBucket>()

  constructor (rate: TokenRate & { maxKeys: number }) {
    this.#rate = { perSecond: rate.perSecond, capacity: rate.capacity }
    this.#maxKeys = rate.maxKeys
  }

  /** The bucket for `key` (a full one when it is new or was forgotten), marked as just used. */
  get (key: string, now: number): TokenBucket {
    const bucket = this.#buckets.get(key) ?? new TokenBucket(this.#rate, now)
    // Re-inserted so the map's order is least recently used first.
    this.#buckets.delete(key)
    this.#buckets.set(key, bucket)
    while (this.#buckets.size > this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!)
    return bucket
  }

  /** The bucket for `key` if one is kept, without creating it or marking it used. */
  peek (key: string): TokenBucket | undefined {
    return this.#buckets.get(key)
  }

  /** Keys kept now. */
  get size (): number {
    return this.#buckets.size
  }
}

/**
 * How many inbound streams one peer id may open, all protocols together: a token bucket of
 * `burst` refilled at `perSecond`. Each stream costs a database query or more, and concurrent
 * streams are capped per connection but not how fast they follow each other: one peer looping
 * requests could otherwise keep the event loop and the database busy for everyone. Memory is
 * bounded by forgetting the least recently seen peers (a forgotten peer starts with a full bucket).
 */
export class StreamRate {
  readonly #perSecond: number
  readonly #burst: number
  readonly #maxPeers: number
  readonly #buckets = new Map<string, { tokens: number, at: number }>()

  constructor (options: { perSecond: number, burst: number, maxPeers?: number }) {
    this.#perSecond = options.perSecond
    this.#burst = options.burst
    this.#maxPeers = options.maxPeers ?? 10_000
  }

  /** Takes one stream for `peerId`; false when its bucket is empty (the stream is to be refused). */
  take (peerId: string, now = performance.now()): boolean {
    const held = this.#buckets.get(peerId)
    const tokens = held === undefined ? this.#burst : Math.min(this.#burst, held.tokens + (now - held.at) / 1000 * this.#perSecond)
    const allowed = tokens >= 1
    // Re-inserted so the map's order is least recently seen first.
    this.#buckets.delete(peerId)
    this.#buckets.set(peerId, { tokens: allowed ? tokens - 1 : tokens, at: now })
    while (this.#buckets.size > this.#maxPeers) this.#buckets.delete(this.#buckets.keys().next().value!)
    return allowed
  }
}

import { KeyedTokenBuckets } from '@barnraise/protocol'

/**
 * How many inbound streams one peer id may open, all protocols together: a token bucket of
 * `burst` refilled at `perSecond`. Each stream costs a database query or more, and concurrent
 * streams are capped per connection but not how fast they follow each other: one peer looping
 * requests could otherwise keep the event loop and the database busy for everyone. Memory is
 * bounded by forgetting the least recently seen peers (a forgotten peer starts with a full bucket).
 */
export class StreamRate {
  readonly #buckets: KeyedTokenBuckets

  constructor (options: { perSecond: number, burst: number, maxPeers?: number }) {
    this.#buckets = new KeyedTokenBuckets({ perSecond: options.perSecond, capacity: options.burst, maxKeys: options.maxPeers ?? 10_000 })
  }

  /** Takes one stream for `peerId`; false when its bucket is empty (the stream is to be refused). */
  take (peerId: string, now = performance.now()): boolean {
    return this.#buckets.get(peerId, now).take(now)
  }
}

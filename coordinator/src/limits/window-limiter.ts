/**
 * Counts events per key (an account, an address, a user) within a sliding window; past the
 * limit, `retryAfter` says how long until the oldest event leaves the window. Memory is
 * bounded by forgetting the stalest keys, so a flood of new keys cannot grow it without end.
 */
export class WindowLimiter {
  readonly #limit: number
  readonly #windowMs: number
  readonly #maxKeys: number
  readonly #events = new Map<string, number[]>()

  constructor (options: { limit: number, windowMs: number, maxKeys?: number }) {
    this.#limit = options.limit
    this.#windowMs = options.windowMs
    this.#maxKeys = options.maxKeys ?? 50_000
  }

  #recent (key: string, now: number): number[] {
    const times = (this.#events.get(key) ?? []).filter((t) => now - t < this.#windowMs)
    if (times.length === 0) this.#events.delete(key)
    else this.#events.set(key, times)
    return times
  }

  /**
   * Whole seconds to wait before the next event for `key` is allowed; 0 when it is allowed now.
   * `pending` events (begun, not yet known to count) are counted as if they happened now.
   */
  retryAfter (key: string, now = Date.now(), pending = 0): number {
    const times = this.#recent(key, now)
    if (times.length + pending < this.#limit) return 0
    const oldest = times[times.length + pending - this.#limit] ?? now
    return Math.max(1, Math.ceil((oldest + this.#windowMs - now) / 1000))
  }

  /** Counts one event for `key`. */
  hit (key: string, now = Date.now()): void {
    const times = this.#recent(key, now)
    times.push(now)
    // Re-insert so the map's order is least recently used first.
    this.#events.delete(key)
    this.#events.set(key, times)
    while (this.#events.size > this.#maxKeys) this.#events.delete(this.#events.keys().next().value!)
  }

  /** Forgets `key`'s events (a good sign-in clears its account's failures). */
  clear (key: string): void {
    this.#events.delete(key)
  }
}

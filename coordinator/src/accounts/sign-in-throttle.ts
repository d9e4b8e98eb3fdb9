/**
 * Slows password guessing: failed sign-ins are counted per account and per address within a
 * window; past the limit, sign-in (even with the right password) waits until the oldest
 * failure leaves the window. Memory is bounded by forgetting the stalest keys.
 */
export class SignInThrottle {
  readonly #windowMs: number
  readonly #perAccount: number
  readonly #perAddress: number
  readonly #maxKeys: number
  readonly #failures = new Map<string, number[]>()

  constructor (options: { windowMs?: number, perAccount?: number, perAddress?: number, maxKeys?: number } = {}) {
    this.#windowMs = options.windowMs ?? 15 * 60_000
    this.#perAccount = options.perAccount ?? 10
    this.#perAddress = options.perAddress ?? 30
    this.#maxKeys = options.maxKeys ?? 50_000
  }

  #recent (key: string, now: number): number[] {
    const times = (this.#failures.get(key) ?? []).filter((t) => now - t < this.#windowMs)
    if (times.length === 0) this.#failures.delete(key)
    else this.#failures.set(key, times)
    return times
  }

  /** Seconds to wait before trying again, or 0 when a sign-in may be attempted now. */
  retryAfter (email: string, address: string, now = Date.now()): number {
    let wait = 0
    for (const [key, limit] of [[`account:${email}`, this.#perAccount], [`address:${address}`, this.#perAddress]] as const) {
      const times = this.#recent(key, now)
      if (times.length >= limit) wait = Math.max(wait, Math.ceil((times[times.length - limit]! + this.#windowMs - now) / 1000))
    }
    return wait
  }

  /** Counts a failed sign-in against the account and the address. */
  failed (email: string, address: string, now = Date.now()): void {
    for (const key of [`account:${email}`, `address:${address}`]) {
      const times = this.#recent(key, now)
      times.push(now)
      this.#failures.delete(key)
      this.#failures.set(key, times)
    }
    while (this.#failures.size > this.#maxKeys) this.#failures.delete(this.#failures.keys().next().value!)
  }

  /** A good sign-in clears the account's failures (the address keeps its count). */
  succeeded (email: string): void {
    this.#failures.delete(`account:${email}`)
  }
}

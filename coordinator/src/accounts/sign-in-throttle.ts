import { WindowLimiter } from '../limits/window-limiter.ts'

/**
 * Slows password guessing: failed sign-ins are counted per account and per address within a
 * window; past the limit, sign-in (even with the right password) waits until the oldest
 * failure leaves the window.
 */
export class SignInThrottle {
  readonly #perAccount: WindowLimiter
  readonly #perAddress: WindowLimiter

  constructor (options: { windowMs?: number, perAccount?: number, perAddress?: number, maxKeys?: number } = {}) {
    const windowMs = options.windowMs ?? 15 * 60_000
    this.#perAccount = new WindowLimiter({ limit: options.perAccount ?? 10, windowMs, maxKeys: options.maxKeys })
    this.#perAddress = new WindowLimiter({ limit: options.perAddress ?? 30, windowMs, maxKeys: options.maxKeys })
  }

  /** Seconds to wait before trying again, or 0 when a sign-in may be attempted now. */
  retryAfter (email: string, address: string, now = Date.now()): number {
    return Math.max(this.#perAccount.retryAfter(email, now), this.#perAddress.retryAfter(address, now))
  }

  /** Counts a failed sign-in against the account and the address. */
  failed (email: string, address: string, now = Date.now()): void {
    this.#perAccount.hit(email, now)
    this.#perAddress.hit(address, now)
  }

  /** A good sign-in clears the account's failures (the address keeps its count). */
  succeeded (email: string): void {
    this.#perAccount.clear(email)
  }
}

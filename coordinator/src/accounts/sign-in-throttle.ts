import { WindowLimiter } from '../limits/window-limiter.ts'

/**
 * Slows password guessing without handing strangers a lockout: failed sign-ins are counted
 * per account from one address, per address, and per account from everywhere, within a
 * window. Past a limit, sign-in (even with the right password) waits until the oldest failure
 * leaves the window. Ten wrong guesses from one address hold that account back from that
 * address only; the account's ceiling across addresses is far higher, so locking a person
 * out takes many addresses (or /64s), while each address still guesses slowly.
 */
export class SignInThrottle {
  readonly #perAccountAddress: WindowLimiter
  readonly #perAddress: WindowLimiter
  readonly #perAccount: WindowLimiter

  constructor (options: { windowMs?: number, perAccountAddress?: number, perAddress?: number, perAccount?: number, maxKeys?: number } = {}) {
    const windowMs = options.windowMs ?? 15 * 60_000
    this.#perAccountAddress = new WindowLimiter({ limit: options.perAccountAddress ?? 10, windowMs, maxKeys: options.maxKeys })
    this.#perAddress = new WindowLimiter({ limit: options.perAddress ?? 30, windowMs, maxKeys: options.maxKeys })
    this.#perAccount = new WindowLimiter({ limit: options.perAccount ?? 200, windowMs, maxKeys: options.maxKeys })
  }

  /** Seconds to wait before trying again, or 0 when a sign-in may be attempted now. */
  retryAfter (email: string, address: string, now = Date.now()): number {
    return Math.max(this.#perAccountAddress.retryAfter(pair(email, address), now), this.#perAddress.retryAfter(address, now), this.#perAccount.retryAfter(email, now))
  }

  /** Counts a failed sign-in against the account from this address, the address and the account. */
  failed (email: string, address: string, now = Date.now()): void {
    this.#perAccountAddress.hit(pair(email, address), now)
    this.#perAddress.hit(address, now)
    this.#perAccount.hit(email, now)
  }

  /** A good sign-in clears the account's failures from this address (the address and the account keep theirs). */
  succeeded (email: string, address: string): void {
    this.#perAccountAddress.clear(pair(email, address))
  }
}

/** One key for an account at an address (an email holds no newline). */
function pair (email: string, address: string): string {
  return `${email}\n${address}`
}

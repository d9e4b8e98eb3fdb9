import { WindowLimiter } from '../limits/window-limiter.ts'

/**
 * Slows password guessing without handing strangers a lockout: failed sign-ins are counted
 * per account from one address, per address, and per account from everywhere, within a
 * window. Past a limit, sign-in (even with the right password) waits until the oldest failure
 * leaves the window. Ten wrong guesses from one address hold that account back from that
 * address only; the account's ceiling across addresses is far higher, and does not hold back
 * an address the account signed in from lately, so a stranger with many addresses (a /48
 * holds 65,536 /64s) can slow the guessing everywhere but not lock the owner out where they
 * usually sign in.
 */
export class SignInThrottle {
  readonly #perAccountAddress: WindowLimiter
  readonly #perAddress: WindowLimiter
  readonly #perAccount: WindowLimiter
  /** (account, address) → when it last signed in; insertion order is age, so the oldest go first past the cap */
  readonly #known = new Map<string, number>()
  readonly #knownMs: number
  readonly #maxKnown: number

  constructor (options: { windowMs?: number, perAccountAddress?: number, perAddress?: number, perAccount?: number, maxKeys?: number, knownMs?: number } = {}) {
    this.#knownMs = options.knownMs ?? 30 * 86_400_000
    this.#maxKnown = options.maxKeys ?? 10_000
    const windowMs = options.windowMs ?? 15 * 60_000
    this.#perAccountAddress = new WindowLimiter({ limit: options.perAccountAddress ?? 10, windowMs, maxKeys: options.maxKeys })
    this.#perAddress = new WindowLimiter({ limit: options.perAddress ?? 30, windowMs, maxKeys: options.maxKeys })
    this.#perAccount = new WindowLimiter({ limit: options.perAccount ?? 200, windowMs, maxKeys: options.maxKeys })
  }

  /** Seconds to wait before trying again, or 0 when a sign-in may be attempted now. */
  retryAfter (email: string, address: string, now = Date.now()): number {
    const seen = this.#known.get(pair(email, address))
    const familiar = seen !== undefined && now - seen < this.#knownMs
    return Math.max(this.#perAccountAddress.retryAfter(pair(email, address), now), this.#perAddress.retryAfter(address, now), familiar ? 0 : this.#perAccount.retryAfter(email, now))
  }

  /** Counts a failed sign-in against the account from this address, the address and the account. */
  failed (email: string, address: string, now = Date.now()): void {
    this.#perAccountAddress.hit(pair(email, address), now)
    this.#perAddress.hit(address, now)
    this.#perAccount.hit(email, now)
  }

  /** A good sign-in clears the account's failures from this address (the address and the account keep theirs). */
  succeeded (email: string, address: string, now = Date.now()): void {
    const key = pair(email, address)
    this.#perAccountAddress.clear(key)
    this.#known.delete(key)
    this.#known.set(key, now)
    if (this.#known.size > this.#maxKnown) this.#known.delete(this.#known.keys().next().value!)
  }
}

/** One key for an account at an address (an email holds no newline). */
function pair (email: string, address: string): string {
  return `${email}\n${address}`
}

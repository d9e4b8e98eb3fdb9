import { WindowLimiter } from '../limits/window-limiter.ts'

/**
 * Slows password guessing without handing strangers a lockout: failed sign-ins are counted
 * per account from one address, per address, and per account from everywhere, within a
 * window. Past a limit, sign-in (even with the right password) waits until the oldest failure
 * leaves the window. Ten wrong guesses from one address hold that account back from that
 * address only. The address's and the account's limits are far higher, and neither holds back
 * an account at an address it signed in from lately ("familiar"): a shared address (an office,
 * CGNAT, a proxy started without --trust-proxy) guessing at other emails does not lock out
 * the people who sign in there, and a stranger with many addresses (a /48 holds 65,536 /64s)
 * can slow the guessing everywhere but not lock the owner out where they usually sign in.
 *
 * Familiar addresses are kept per account (its newest few), so nobody else's sign-ins can push
 * an account's out; sign-ins that make a new (account, address) pair are limited per address,
 * which bounds how fast anyone can grow or churn what is kept.
 */
export class SignInThrottle {
  readonly #perAccountAddress: WindowLimiter
  readonly #perAddress: WindowLimiter
  readonly #perAccount: WindowLimiter
  /** sign-ins that made a new (account, address) pair, per address */
  readonly #newPairsPerAddress: WindowLimiter
  /**
   * account → (address → when it last signed in there). Both maps' insertion order is age, so
   * past a cap the account that signed in longest ago, or an account's oldest address, goes first.
   */
  readonly #familiar = new Map<string, Map<string, number>>()
  readonly #knownMs: number
  readonly #maxAccounts: number
  readonly #addressesPerAccount: number

  constructor (options: {
    windowMs?: number
    perAccountAddress?: number
    perAddress?: number
    perAccount?: number
    /** sign-ins per address that add a (account, address) pair the throttle did not know */
    newPairsPerAddress?: number
    maxKeys?: number
    knownMs?: number
    /** accounts whose familiar addresses are kept (the ones that signed in longest ago go first) */
    maxAccounts?: number
    /** familiar addresses kept per account, newest first */
    addressesPerAccount?: number
  } = {}) {
    this.#knownMs = options.knownMs ?? 30 * 86_400_000
    this.#maxAccounts = options.maxAccounts ?? 50_000
    this.#addressesPerAccount = options.addressesPerAccount ?? 8
    const windowMs = options.windowMs ?? 15 * 60_000
    this.#perAccountAddress = new WindowLimiter({ limit: options.perAccountAddress ?? 10, windowMs, maxKeys: options.maxKeys })
    this.#perAddress = new WindowLimiter({ limit: options.perAddress ?? 30, windowMs, maxKeys: options.maxKeys })
    this.#perAccount = new WindowLimiter({ limit: options.perAccount ?? 200, windowMs, maxKeys: options.maxKeys })
    this.#newPairsPerAddress = new WindowLimiter({ limit: options.newPairsPerAddress ?? 60, windowMs, maxKeys: options.maxKeys })
  }

  /** Whether `email` signed in from `address` within the remembered time. */
  #isFamiliar (email: string, address: string, now: number): boolean {
    const seen = this.#familiar.get(email)?.get(address)
    return seen !== undefined && now - seen < this.#knownMs
  }

  /** Seconds to wait before trying again, or 0 when a sign-in may be attempted now. */
  retryAfter (email: string, address: string, now = Date.now()): number {
    const own = this.#perAccountAddress.retryAfter(pair(email, address), now)
    if (this.#isFamiliar(email, address, now)) return own
    return Math.max(own, this.#perAddress.retryAfter(address, now), this.#perAccount.retryAfter(email, now), this.#newPairsPerAddress.retryAfter(address, now))
  }

  /** Counts a failed sign-in against the account from this address, the address and the account. */
  failed (email: string, address: string, now = Date.now()): void {
    this.#perAccountAddress.hit(pair(email, address), now)
    this.#perAddress.hit(address, now)
    this.#perAccount.hit(email, now)
  }

  /**
   * A good sign-in (or sign-up) clears the account's failures from this address (the address
   * and the account keep theirs) and makes the address familiar to the account; one from an
   * address the account was not familiar with counts against that address's new pairs.
   */
  succeeded (email: string, address: string, now = Date.now()): void {
    this.#perAccountAddress.clear(pair(email, address))
    if (!this.#isFamiliar(email, address, now)) this.#newPairsPerAddress.hit(address, now)
    const addresses = this.#familiar.get(email) ?? new Map<string, number>()
    // Re-insert both so the maps' order stays oldest first.
    this.#familiar.delete(email)
    this.#familiar.set(email, addresses)
    addresses.delete(address)
    addresses.set(address, now)
    while (addresses.size > this.#addressesPerAccount) addresses.delete(addresses.keys().next().value!)
    while (this.#familiar.size > this.#maxAccounts) this.#familiar.delete(this.#familiar.keys().next().value!)
  }
}

/** One key for an account at an address (an email holds no newline). */
function pair (email: string, address: string): string {
  return `${email}\n${address}`
}

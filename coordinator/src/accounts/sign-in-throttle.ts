import { WindowLimiter } from '../limits/window-limiter.ts'
import { networkOf } from '../http/address-key.ts'

/**
 * A sign-in under way, counted by the throttle from before its password check starts until it
 * ends: guesses sent at once meet the limits as guesses sent one after another do. Settle it
 * once with `failed` or `succeeded`; `end` (in a finally) forgets it uncounted where neither
 * came, so none is left pending.
 */
export interface SignInAttempt {
  /** whether the account signed in from this address lately (its check may use the password checker's share kept for such) */
  readonly familiar: boolean
  /** The password was wrong: a failed sign-in, counted as `SignInThrottle.failed` counts it. */
  failed: () => void
  /** The password was right: recorded as `SignInThrottle.succeeded` records it. */
  succeeded: () => void
  /** No longer pending; counts nothing where `failed` or `succeeded` came first, and nothing more if called again. */
  end: () => void
}

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
 * Failures are also counted per network (an IPv6 /48, `networkOf`): its 65,536 /64s would
 * otherwise each have the per-address limit. An IPv4 address is its own network.
 *
 * A sign-in counts as pending from `begin` until its check ends, and every limit counts
 * pending sign-ins as failures: a burst sent at once is checked no more than a sequence is.
 *
 * Familiar addresses are kept per account (its newest few), so nobody else's sign-ins can push
 * an account's out; sign-ins that make a new (account, address) pair are limited per address,
 * which bounds how fast anyone can grow or churn what is kept.
 */
export class SignInThrottle {
  readonly #perAccountAddress: WindowLimiter
  readonly #perAddress: WindowLimiter
  readonly #perAccount: WindowLimiter
  readonly #perNetwork: WindowLimiter
  /** sign-ins that made a new (account, address) pair, per address */
  readonly #newPairsPerAddress: WindowLimiter
  /**
   * account → (address → when it last signed in there). Both maps' insertion order is age, so
   * past a cap the account that signed in longest ago, or an account's oldest address, goes first.
   */
  readonly #familiar = new Map<string, Map<string, number>>()
  /**
   * Sign-ins begun and not yet ended, per key of each limiter (`#newPairs` counts those begun at
   * an address unfamiliar to their account). Entries live only while a check runs, so they are
   * bounded by the requests in flight.
   */
  readonly #pending = { pair: new Counts(), address: new Counts(), account: new Counts(), network: new Counts(), newPairs: new Counts() }
  readonly #knownMs: number
  readonly #maxAccounts: number
  readonly #addressesPerAccount: number

  constructor (options: {
    windowMs?: number
    perAccountAddress?: number
    perAddress?: number
    perAccount?: number
    /** failed sign-ins per network (an IPv6 /48; none for IPv4, whose address is its network) */
    perNetwork?: number
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
    this.#perNetwork = new WindowLimiter({ limit: options.perNetwork ?? 100, windowMs, maxKeys: options.maxKeys })
    this.#newPairsPerAddress = new WindowLimiter({ limit: options.newPairsPerAddress ?? 60, windowMs, maxKeys: options.maxKeys })
  }

  /** Whether `email` signed in from `address` within the remembered time. */
  #isFamiliar (email: string, address: string, now: number): boolean {
    const seen = this.#familiar.get(email)?.get(address)
    return seen !== undefined && now - seen < this.#knownMs
  }

  /**
   * Seconds to wait before trying again, or 0 when a sign-in may be attempted now; sign-ins
   * pending (begun, not ended) count as failures.
   */
  retryAfter (email: string, address: string, now = Date.now()): number {
    const key = pair(email, address)
    const own = this.#perAccountAddress.retryAfter(key, now, this.#pending.pair.get(key))
    if (this.#isFamiliar(email, address, now)) return own
    const network = networkKey(address)
    return Math.max(
      own,
      this.#perAddress.retryAfter(address, now, this.#pending.address.get(address)),
      this.#perAccount.retryAfter(email, now, this.#pending.account.get(email)),
      network === undefined ? 0 : this.#perNetwork.retryAfter(network, now, this.#pending.network.get(network)),
      this.#newPairsPerAddress.retryAfter(address, now, this.#pending.newPairs.get(address))
    )
  }

  /**
   * Starts a sign-in at `address` for `email`, pending until it ends, or says how many seconds
   * to wait (`retryAfter`) and starts nothing. Call it before the password check: the limits are
   * checked and the attempt counted at once, so sign-ins begun together meet them one by one.
   */
  begin (email: string, address: string, now = Date.now()): { retryAfter: number } | { attempt: SignInAttempt } {
    const wait = this.retryAfter(email, address, now)
    if (wait > 0) return { retryAfter: wait }
    const familiar = this.#isFamiliar(email, address, now)
    const keys: Array<[Counts, string]> = [[this.#pending.pair, pair(email, address)], [this.#pending.address, address], [this.#pending.account, email]]
    const network = networkKey(address)
    if (network !== undefined) keys.push([this.#pending.network, network])
    if (!familiar) keys.push([this.#pending.newPairs, address])
    for (const [counts, key] of keys) counts.add(key)
    let pending = true
    const end = (): void => {
      if (!pending) return
      pending = false
      for (const [counts, key] of keys) counts.remove(key)
    }
    return {
      attempt: {
        familiar,
        failed: () => { if (pending) { end(); this.failed(email, address) } },
        succeeded: () => { if (pending) { end(); this.succeeded(email, address) } },
        end
      }
    }
  }

  /** Counts a failed sign-in against the account from this address, the address, its network and the account. */
  failed (email: string, address: string, now = Date.now()): void {
    this.#perAccountAddress.hit(pair(email, address), now)
    this.#perAddress.hit(address, now)
    this.#perAccount.hit(email, now)
    const network = networkKey(address)
    if (network !== undefined) this.#perNetwork.hit(network, now)
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

/** Counts per key that forget a key at zero, so only keys in use take memory. */
class Counts {
  readonly #counts = new Map<string, number>()

  get (key: string): number {
    return this.#counts.get(key) ?? 0
  }

  add (key: string): void {
    this.#counts.set(key, this.get(key) + 1)
  }

  remove (key: string): void {
    const left = this.get(key) - 1
    if (left > 0) this.#counts.set(key, left)
    else this.#counts.delete(key)
  }
}

/**
 * The network an address key's failures are also counted under: an IPv6 /64's /48. None for
 * IPv4: addresses cost an attacker there, and a campus or a carrier's NAT spreads thousands of
 * people over a few of them, who would share one allowance.
 */
function networkKey (address: string): string | undefined {
  const network = networkOf(address)
  return network !== address ? network : undefined
}

/** One key for an account at an address (an email holds no newline). */
function pair (email: string, address: string): string {
  return `${email}\n${address}`
}

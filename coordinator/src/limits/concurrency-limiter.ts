import { networkOf } from '../http/address-key.ts'
import { KeyCounts } from './key-counts.ts'

/** How many of one kind of long request may run at once: from one address, from one network, and in all. */
export interface ConcurrencyLimits { perAddress: number, perNetwork: number, total: number }

/** A slot held until `release` (idempotent), or why none was given. */
export type SlotTake = { ok: true, release: () => void } | { ok: false, reason: string }

/**
 * Caps requests in progress (not requests over time, as WindowLimiter does): a ledger export
 * holds a database page and a socket's buffer for as long as its client takes to read it, so
 * one address (an IPv6 /64 counts once: address-key.ts) may hold a few at once, one network (an
 * IPv6 /48) a few more, and all clients together a bounded number. Memory is one count per
 * address with a slot held.
 */
export class ConcurrencyLimiter {
  readonly #limits: ConcurrencyLimits
  readonly #perAddress = new KeyCounts()
  readonly #perNetwork = new KeyCounts()
  #total = 0

  constructor (limits: ConcurrencyLimits) {
    this.#limits = limits
  }

  /** Slots held now, in all or by `address`. */
  held (address?: string): number {
    return address === undefined ? this.#total : this.#perAddress.get(address)
  }

  /** Takes a slot for `address` (an address key), or says which cap is full; `what` names the requests in the reason. */
  take (address: string, what: string): SlotTake {
    const network = networkOf(address)
    if (this.#perAddress.get(address) >= this.#limits.perAddress) {
      return { ok: false, reason: `${this.#perAddress.get(address)} ${what} are already in progress from your address (at most ${this.#limits.perAddress} at once); wait for one to finish` }
    }
    if (network !== address && this.#perNetwork.get(network) >= this.#limits.perNetwork) {
      return { ok: false, reason: `${this.#perNetwork.get(network)} ${what} are already in progress from your network (at most ${this.#limits.perNetwork} at once); wait for one to finish` }
    }
    if (this.#total >= this.#limits.total) {
      return { ok: false, reason: `the coordinator is serving ${this.#total} ${what} already (at most ${this.#limits.total} at once); try again shortly` }
    }
    this.#perAddress.add(address)
    if (network !== address) this.#perNetwork.add(network)
    this.#total++
    let held = true
    return {
      ok: true,
      release: () => {
        if (!held) return
        held = false
        this.#perAddress.remove(address)
        if (network !== address) this.#perNetwork.remove(network)
        this.#total--
      }
    }
  }
}

// What one source (an address, a network) may hold of a libp2p host's inbound connections at
// once. libp2p's own limits are one global cap on connections in their handshake, checked
// before its per-address rate, and one global cap on connections: a single address that dials
// slowly and never finishes the handshake, or finishes it and then sits idle, holds them all.
// These counts let a connection gater turn a source away once it holds its share, before the
// global caps are reached; shared by the coordinator's host and the agent's.

import type { MultiaddrConnection } from '@libp2p/interface'
import { parseIpv6 } from './ipv6-address.ts'

/** One cap: the key an IP address counts under (undefined where the cap does not apply to it) and how many one key may hold. */
export interface SourceCap {
  keyOf: (ip: string) => string | undefined
  max: number
}

/**
 * The IP address a connection comes from, or undefined for a relayed connection (its address
 * begins with the relay's, which many peers share) or one not over IP.
 */
export function remoteIp (address: MultiaddrConnection['remoteAddr']): string | undefined {
  const components = address.getComponents()
  if (components.some((c) => c.name === 'p2p-circuit')) return undefined
  const first = components[0]
  return first !== undefined && (first.name === 'ip4' || first.name === 'ip6') ? first.value : undefined
}

/**
 * The key an address counts under: an IPv4 address as it is (also one mapped into IPv6, as a
 * dual-stack socket reports it), an IPv6 address as its /64, which one host or home is given
 * whole.
 */
export function sourceAddressKey (ip: string): string {
  const groups = parseIpv6(ip)
  if (groups === undefined) return ip
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`
}

/** An IPv6 address's /48, which one customer is often given (its 65,536 /64s would each be a source); undefined for IPv4. */
export function sourceNetworkKey (ip: string): string | undefined {
  const key = sourceAddressKey(ip)
  const groups = key.endsWith('::/64') ? key.split(':') : undefined
  return groups === undefined ? undefined : `${groups.slice(0, 3).join(':')}::/48`
}

/** Caps per address (an IPv6 /64) and per IPv6 /48, keyed as above. */
export function addressAndNetworkCaps (perAddress: number, perNetwork: number): SourceCap[] {
  return [{ keyOf: sourceAddressKey, max: perAddress }, { keyOf: sourceNetworkKey, max: perNetwork }]
}

/** How many of something each source holds, under every cap at once. */
export class SourceCounts {
  readonly #caps: SourceCap[]
  readonly #counts: Array<Map<string, number>>

  constructor (caps: SourceCap[]) {
    this.#caps = caps
    this.#counts = caps.map(() => new Map<string, number>())
  }

  /** Counts one more for `ip` unless that would pass a cap: returns its release (idempotent), or undefined when refused. */
  take (ip: string): (() => void) | undefined {
    const keys = this.#caps.map((cap) => cap.keyOf(ip))
    if (keys.some((key, i) => key !== undefined && (this.#counts[i]!.get(key) ?? 0) >= this.#caps[i]!.max)) return undefined
    keys.forEach((key, i) => { if (key !== undefined) this.#counts[i]!.set(key, (this.#counts[i]!.get(key) ?? 0) + 1) })
    let released = false
    return () => {
      if (released) return
      released = true
      keys.forEach((key, i) => {
        if (key === undefined) return
        const left = (this.#counts[i]!.get(key) ?? 1) - 1
        if (left > 0) this.#counts[i]!.set(key, left)
        else this.#counts[i]!.delete(key)
      })
    }
  }

  /** Whether releasing one held by `other` would free a place under a cap that is full for `ip` now. */
  frees (ip: string, other: string): boolean {
    return this.#caps.some((cap, i) => {
      const key = cap.keyOf(ip)
      return key !== undefined && (this.#counts[i]!.get(key) ?? 0) >= cap.max && key === cap.keyOf(other)
    })
  }

  /** How many keys hold anything, all caps together (0 once everything is released). */
  get size (): number {
    return this.#counts.reduce((n, m) => n + m.size, 0)
  }
}

/**
 * Inbound connections still in their handshake, per source. For a connection gater:
 * `deny` as `denyInboundConnection` (true refuses a source past its cap), `ended` from
 * `denyInboundUpgradedConnection`; a connection whose handshake fails or times out is released
 * when its socket closes. Relayed connections are not counted (their address is the relay's).
 */
export class InboundHandshakes {
  readonly #counts: SourceCounts
  readonly #release = new Map<MultiaddrConnection, () => void>()

  constructor (caps: SourceCap[]) {
    this.#counts = new SourceCounts(caps)
  }

  /** True refuses `maConn`: its source already has as many handshakes in progress as it may. */
  deny (maConn: MultiaddrConnection): boolean {
    const ip = remoteIp(maConn.remoteAddr)
    if (ip === undefined) return false
    // Its close event has been dispatched already: it would never be released.
    if (maConn.status !== 'open') return true
    const release = this.#counts.take(ip)
    if (release === undefined) return true
    this.#release.set(maConn, release)
    maConn.addEventListener('close', () => { this.ended(maConn) }, { once: true })
    return false
  }

  /** The handshake of `maConn` is over (upgraded or failed); its place is free. */
  ended (maConn: MultiaddrConnection): void {
    const release = this.#release.get(maConn)
    if (release === undefined) return
    this.#release.delete(maConn)
    release()
  }

  /** Handshakes in progress, all sources together. */
  get inProgress (): number {
    return this.#release.size
  }
}

import type { Libp2p, MultiaddrConnection, PeerId } from '@libp2p/interface'
import { InboundHandshakes, SourceCounts, remoteIp } from '@barnraise/protocol'
import type { SourceCap } from '@barnraise/protocol'
import { addressKey, networkOf } from '../http/address-key.ts'
import type { PeerLimits } from './peer-limits.ts'

/**
 * Caps keyed as the HTTP server keys its clients (http/address-key.ts): per address (an IPv6
 * /64) and per IPv6 /48; an IPv4 address is capped per address only, as its networks are not
 * handed out whole.
 */
function coordinatorCaps (perAddress: number, perNetwork: number): SourceCap[] {
  const network = (ip: string): string | undefined => {
    const key = addressKey(ip)
    const wider = networkOf(key)
    return wider !== key ? wider : undefined
  }
  return [{ keyOf: addressKey, max: perAddress }, { keyOf: network, max: perNetwork }]
}

/** A connection admitted from a peer id that was not enrolled, until it enrolls or closes. */
interface Stranger {
  peerId: PeerId
  /** Undefined for a connection not over IP (not counted per source). */
  ip: string | undefined
  release: () => void
  deadline: ReturnType<typeof setTimeout>
}

export interface InboundGateOptions {
  limits: PeerLimits
  /** True for an enrolled, unrevoked node; without it no peer is told apart (no stranger rules). */
  isEnrolled?: (peerId: string) => Promise<boolean>
}

/**
 * The coordinator host's inbound rules beyond libp2p's own (p2p/host.ts). libp2p caps
 * handshakes in progress and connections only in total, so one address could hold them all:
 *
 * - Handshakes: one source holds at most a few at once (`denyInboundConnection`), released when
 *   the upgrade ends either way (`denyInboundUpgradedConnection`, or the socket's close).
 * - Strangers, peer ids that are not enrolled: one source holds at most a few connections, and
 *   once connections reach `strangerShare` of the total only enrolled nodes take more. A
 *   stranger past either cap replaces the oldest stranger in its way (the newest wins, as for
 *   one peer id's connections), so an honest agent enrolling from a busy address or a busy
 *   coordinator still gets in, and a source only ever churns its own; it is refused only where
 *   enrolled nodes hold the room. An agent that is turned away at the handshake takes it for a
 *   revocation after three tries, so refusing strangers outright would stop honest new agents.
 * - A stranger's connection is closed `enrollWithinMs` after it opened unless it enrolled by
 *   then; an agent enrolls within seconds of connecting.
 */
export class InboundGate {
  readonly #limits: PeerLimits
  readonly #isEnrolled: ((peerId: string) => Promise<boolean>) | undefined
  readonly #handshakes: InboundHandshakes
  readonly #strangerCounts: SourceCounts
  /** Oldest first (a Map keeps the order entries were set in). */
  readonly #strangers = new Map<MultiaddrConnection, Stranger>()
  #host: Libp2p | undefined

  constructor (options: InboundGateOptions) {
    this.#limits = options.limits
    this.#isEnrolled = options.isEnrolled
    this.#handshakes = new InboundHandshakes(coordinatorCaps(options.limits.maxHandshakesPerAddress, options.limits.maxHandshakesPerNetwork))
    this.#strangerCounts = new SourceCounts(coordinatorCaps(options.limits.maxStrangersPerAddress, options.limits.maxStrangersPerNetwork))
  }

  /** The host whose connections count towards `strangerShare`; the gate exists before it. */
  attach (host: Libp2p): void {
    this.#host = host
  }

  /** For the gater's denyInboundConnection: true refuses a source with as many handshakes in progress as it may hold. */
  denyInboundConnection (maConn: MultiaddrConnection): boolean {
    return this.#handshakes.deny(maConn)
  }

  /** For the gater's denyInboundUpgradedConnection: the handshake is over. Never refuses. */
  denyInboundUpgradedConnection (maConn: MultiaddrConnection): boolean {
    this.#handshakes.ended(maConn)
    return false
  }

  /**
   * After the noise handshake names the peer (denyInboundEncryptedConnection, once a revoked
   * peer is turned away): admits an enrolled node, and a stranger within the caps, making room
   * by closing older strangers where it can. True refuses it.
   */
  async denyStranger (peerId: PeerId, maConn: MultiaddrConnection): Promise<boolean> {
    if (this.#isEnrolled === undefined || await this.#isEnrolled(peerId.toString())) return false
    const ip = remoteIp(maConn.remoteAddr)
    // Each pass frees one place (or finds none to free); a source holds its caps' worth at most.
    for (let pass = 0; pass < 4; pass++) {
      const open = this.#host?.getConnections().length ?? 0
      const roomy = open < Math.floor(this.#limits.maxConnections * this.#limits.strangerShare)
      const release = !roomy ? undefined : ip === undefined ? () => {} : this.#strangerCounts.take(ip)
      if (release !== undefined) {
        // Closed while the database was asked: its close event has gone by.
        if (maConn.status !== 'open') { release(); return true }
        this.#admit(peerId, ip, maConn, release)
        return false
      }
      const inTheWay = [...this.#strangers.entries()].find(([, s]) => !roomy || (ip !== undefined && s.ip !== undefined && this.#strangerCounts.frees(ip, s.ip)))
      if (inTheWay === undefined) return true
      await this.#makeRoom(inTheWay[0])
    }
    return true
  }

  #admit (peerId: PeerId, ip: string | undefined, maConn: MultiaddrConnection, release: () => void): void {
    const deadline = setTimeout(() => { void this.#atDeadline(maConn) }, this.#limits.enrollWithinMs)
    deadline.unref()
    this.#strangers.set(maConn, { peerId, ip, release, deadline })
    maConn.addEventListener('close', () => { this.#forget(maConn) }, { once: true })
  }

  /** Frees the place `maConn` holds: it enrolled meanwhile (it stays, no longer a stranger), or it is closed. */
  async #makeRoom (maConn: MultiaddrConnection): Promise<void> {
    const stranger = this.#strangers.get(maConn)
    if (stranger === undefined) return
    if (await this.#isEnrolled?.(stranger.peerId.toString()) === true) { this.#forget(maConn); return }
    if (!this.#forget(maConn)) return
    this.#close(maConn, 'a newer connection needed its place')
  }

  async #atDeadline (maConn: MultiaddrConnection): Promise<void> {
    const stranger = this.#strangers.get(maConn)
    if (stranger === undefined) return
    let enrolled: boolean
    try {
      enrolled = await this.#isEnrolled?.(stranger.peerId.toString()) === true
    } catch {
      // The database did not answer: ask again later rather than close a node that may have enrolled.
      if (this.#strangers.get(maConn) === stranger) {
        stranger.deadline = setTimeout(() => { void this.#atDeadline(maConn) }, this.#limits.enrollWithinMs)
        stranger.deadline.unref()
      }
      return
    }
    if (!this.#forget(maConn) || enrolled) return
    this.#close(maConn, `did not enroll within ${this.#limits.enrollWithinMs} ms`)
  }

  #close (maConn: MultiaddrConnection, why: string): void {
    // Its close event is dispatched at once, so the host stops counting the connection before this returns.
    maConn.abort(new Error(`closed: the peer is not enrolled and ${why}`))
  }

  /** Stops counting `maConn` as a stranger; false when it was not counted (any more). */
  #forget (maConn: MultiaddrConnection): boolean {
    const stranger = this.#strangers.get(maConn)
    if (stranger === undefined) return false
    this.#strangers.delete(maConn)
    clearTimeout(stranger.deadline)
    stranger.release()
    return true
  }

  /** Connections counted as strangers' now (for tests and metrics). */
  get strangers (): number {
    return this.#strangers.size
  }
}

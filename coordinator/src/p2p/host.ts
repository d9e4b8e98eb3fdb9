import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { ComponentLogger, Libp2p, Metrics, MultiaddrConnection, PeerId, PrivateKey } from '@libp2p/interface'
import type { PeerLimits } from './peer-limits.ts'
import { InboundGate } from './inbound-gate.ts'

/** What one relayed connection between two agents may carry, and for how long. */
export const RELAY_DATA_LIMIT_BYTES = 64 * 1024 * 1024
export const RELAY_DURATION_LIMIT_MS = 10 * 60_000

export interface HostOptions {
  privateKey: PrivateKey
  /** e.g. `/ip4/127.0.0.1/tcp/0` */
  listen: string[]
  limits: PeerLimits
  /** True for a peer that must not connect at all (a revoked node). */
  isRevoked: (peerId: string) => Promise<boolean>
  /**
   * True for an enrolled, unrevoked node. With it the host relays between such nodes (circuit
   * relay v2), so an agent that can only dial out is still reachable by its peers; without it
   * the host is no relay.
   */
  isEnrolled?: (peerId: string) => Promise<boolean>
  /** Where agents reach the host when not at a listen address (--announce); these replace the listen addresses in what it tells peers. */
  announce?: string[]
  /** A libp2p metrics component (--metrics: bytes per protocol, connections); none by default. */
  metrics?: (components: { logger: ComponentLogger }) => Metrics
}

/**
 * The coordinator's libp2p host: TCP, noise, yamux, identify and ping. A connection gater
 * caps each address's handshakes in progress and its connections from peers that are not
 * enrolled, keeping room for enrolled nodes (p2p/inbound-gate.ts), turns a revoked peer away as
 * soon as the noise handshake names it, and closes a peer's oldest connection when a new one
 * would pass its cap; the connection manager bounds new connections per address per second,
 * handshakes and connections in total.
 */
export async function createCoordinatorHost (options: HostOptions): Promise<Libp2p> {
  const { limits } = options
  const gate = new InboundGate({ limits, ...(options.isEnrolled !== undefined ? { isEnrolled: options.isEnrolled } : {}) })
  // The gater runs inside the host, so it learns of the host once it exists.
  let host: Libp2p | undefined
  const deny = async (peerId: PeerId, maConn: MultiaddrConnection): Promise<boolean> => {
    if (await options.isRevoked(peerId.toString())) return true
    if (await gate.denyStranger(peerId, maConn)) return true
    // At the cap the newest connection wins: a node that restarts after losing its network must
    // get in before the old connection times out, and the peer still never holds more.
    const held = [...(host?.getConnections(peerId) ?? [])].sort((a, b) => a.timeline.open - b.timeline.open)
    for (const stale of held.slice(0, Math.max(0, held.length - limits.maxConnectionsPerPeer + 1))) {
      void stale.close().catch((err: unknown) => { stale.abort(err as Error) })
    }
    return false
  }
  host = await createLibp2p({
    privateKey: options.privateKey,
    addresses: { listen: options.listen, ...(options.announce !== undefined && options.announce.length > 0 ? { announce: options.announce } : {}) },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    // A stream's unread bytes are bounded by its reader's pause (protocol's JsonStream) plus the
    // window already granted: 4 MiB keeps a thousand slow uploads in memory the coordinator has,
    // and still fills 300 Mbit/s at 100 ms round trip per stream.
    streamMuxers: [yamux({ maxInboundStreams: limits.maxStreamsPerConnection, streamOptions: { maxStreamWindowSize: 4 * 1024 * 1024 } })],
    services: {
      identify: identify(),
      ping: ping(),
      // Agents push the relay address they are granted after the first identify.
      identifyPush: identifyPush(),
      ...(options.isEnrolled !== undefined
        ? {
            relay: circuitRelayServer({
              reservations: {
                maxReservations: limits.maxConnections,
                // Relayed bytes are the coordinator's egress: enough for a peer to send some blocks
                // while the two try a direct connection (DCUtR), not a second download path.
                defaultDataLimit: BigInt(RELAY_DATA_LIMIT_BYTES),
                defaultDurationLimit: RELAY_DURATION_LIMIT_MS
              }
            })
          }
        : {})
    },
    ...(options.metrics !== undefined ? { metrics: options.metrics } : {}),
    connectionGater: {
      denyInboundConnection: (maConn) => gate.denyInboundConnection(maConn),
      denyInboundEncryptedConnection: deny,
      denyInboundUpgradedConnection: (_peerId, maConn) => gate.denyInboundUpgradedConnection(maConn),
      // The coordinator never dials; this keeps a revoked peer out of any dial path too.
      denyDialPeer: async (peerId) => await options.isRevoked(peerId.toString()),
      // A new agent asks for its relay slot on the connection it enrolls over, before its
      // enrollment is through, so any peer but a revoked one gets a slot (a few hundred bytes,
      // at most one a connection); only enrolled nodes are relayed, and only to one another.
      denyInboundRelayReservation: async (peerId) => options.isEnrolled === undefined || await options.isRevoked(peerId.toString()),
      denyOutboundRelayedConnection: async (source, destination) =>
        options.isEnrolled === undefined || !await options.isEnrolled(source.toString()) || !await options.isEnrolled(destination.toString())
    },
    connectionManager: {
      maxConnections: limits.maxConnections,
      inboundConnectionThreshold: limits.inboundConnectionThreshold,
      maxIncomingPendingConnections: limits.maxIncomingPendingConnections,
      // A stalled handshake holds its place until this runs out; noise and the muxer need two round trips.
      inboundUpgradeTimeout: limits.inboundUpgradeTimeoutMs
    }
  })
  gate.attach(host)
  const relay = (host.services as { relay?: CircuitRelayService }).relay
  if (relay !== undefined) {
    // A slot outlives its connection by its TTL (2 h) otherwise, and anyone may take one: fresh
    // peer ids that reserve and hang up filled every slot (maxConnections), and enrolled nodes
    // behind NAT got none. A slot is only usable while its peer is connected, so it goes with the
    // last connection, and the strangers' slots are bounded by the connections they hold.
    host.addEventListener('peer:disconnect', (evt) => {
      const slot = relay.reservations.get(evt.detail)
      if (slot === undefined) return
      // Its expiry timer would otherwise delete a slot the peer takes again under the same id.
      slot.signal.clear()
      relay.reservations.delete(evt.detail)
    })
  }
  return host
}

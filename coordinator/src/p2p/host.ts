import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { ComponentLogger, Libp2p, Metrics, PeerId, PrivateKey } from '@libp2p/interface'
import type { PeerLimits } from './peer-limits.ts'

export interface HostOptions {
  privateKey: PrivateKey
  /** e.g. `/ip4/127.0.0.1/tcp/0` */
  listen: string[]
  limits: PeerLimits
  /** True for a peer that must not connect at all (a revoked node). */
  isRevoked: (peerId: string) => Promise<boolean>
  /** A libp2p metrics component (--metrics: bytes per protocol, connections); none by default. */
  metrics?: (components: { logger: ComponentLogger }) => Metrics
}

/**
 * The coordinator's libp2p host: TCP, noise, yamux, identify and ping. A connection gater
 * turns a revoked peer away as soon as the noise handshake names it, and closes a peer's
 * oldest connection when a new one would pass its cap; the connection manager bounds
 * connections per address and in total.
 */
export async function createCoordinatorHost (options: HostOptions): Promise<Libp2p> {
  const { limits } = options
  // The gater runs inside the host, so it learns of the host once it exists.
  let host: Libp2p | undefined
  const deny = async (peerId: PeerId): Promise<boolean> => {
    if (await options.isRevoked(peerId.toString())) return true
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
    addresses: { listen: options.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    // A stream's unread bytes are bounded by its reader's pause (protocol's JsonStream) plus the
    // window already granted: 4 MiB keeps a thousand slow uploads in memory the coordinator has,
    // and still fills 300 Mbit/s at 100 ms round trip per stream.
    streamMuxers: [yamux({ maxInboundStreams: limits.maxStreamsPerConnection, streamOptions: { maxStreamWindowSize: 4 * 1024 * 1024 } })],
    services: { identify: identify(), ping: ping() },
    ...(options.metrics !== undefined ? { metrics: options.metrics } : {}),
    connectionGater: {
      denyInboundEncryptedConnection: deny,
      // The coordinator never dials; this keeps a revoked peer out of any dial path too.
      denyDialPeer: async (peerId) => await options.isRevoked(peerId.toString())
    },
    connectionManager: {
      maxConnections: limits.maxConnections,
      inboundConnectionThreshold: limits.inboundConnectionThreshold,
      maxIncomingPendingConnections: limits.maxIncomingPendingConnections
    }
  })
  return host
}

import { REQUEST_TIMEOUT_MS } from '@barnraise/protocol'

/** Limits that keep one peer (or many) from holding the libp2p host's resources. */
export interface PeerLimits {
  /** Open connections one peer id may hold at once (a new one closes the oldest); an agent needs one. */
  maxConnectionsPerPeer: number
  /** Open connections in total. */
  maxConnections: number
  /** Streams open at once on one connection, all protocols together (the muxer's cap). */
  maxStreamsPerConnection: number
  /** New connections one IP address may open per second. */
  inboundConnectionThreshold: number
  /**
   * Connections still in their handshake at once, across all addresses. libp2p checks it before
   * the per-address rate, so it must be far above what one address may hold (below).
   */
  maxIncomingPendingConnections: number
  /**
   * Connections one address (an IPv6 /64) may hold in their handshake at once, and one IPv6 /48;
   * past either, its new connections are refused until one finishes or times out. Scaled up
   * with a raised `inboundConnectionThreshold` unless given (`resolvePeerLimits`).
   */
  maxHandshakesPerAddress: number
  maxHandshakesPerNetwork: number
  /** How long an inbound connection may take over its handshake (noise and the muxer). */
  inboundUpgradeTimeoutMs: number
  /**
   * Connections one address (an IPv6 /64) may hold from peer ids that are not enrolled, and one
   * IPv6 /48. An enrolled node's connections are not counted; an agent enrolls over its first
   * connection, so these only bound peers that have not (yet). Scaled up with a raised
   * `inboundConnectionThreshold` unless given.
   */
  maxStrangersPerAddress: number
  maxStrangersPerNetwork: number
  /** The share of maxConnections past which only enrolled nodes are let in, so strangers can never take the last slots. */
  strangerShare: number
  /** How long a connection whose peer has not enrolled stays open; an agent enrolls within seconds of connecting. */
  enrollWithinMs: number
  /** The longest a blob or report stream may sit without a frame moving. */
  frameIdleTimeoutMs: number
  /**
   * The slowest a blob or report transfer may run on average: a stream gets
   * REQUEST_TIMEOUT_MS plus its size at this rate in total, then it is cut.
   */
  minBytesPerSecond: number
  /**
   * Inbound streams one peer id may open per second, all protocols together, after a first
   * `streamBurst` (p2p/stream-rate.ts). An agent opens a few a minute, and at most one a block
   * (1 MiB) when it downloads a checkpoint block by block; more is a peer looping requests.
   */
  streamsPerSecond: number
  streamBurst: number
}

export const DEFAULT_PEER_LIMITS: PeerLimits = {
  maxConnectionsPerPeer: 2,
  maxConnections: 1000,
  maxStreamsPerConnection: 32,
  inboundConnectionThreshold: 5,
  maxIncomingPendingConnections: 256,
  maxHandshakesPerAddress: 4,
  maxHandshakesPerNetwork: 16,
  inboundUpgradeTimeoutMs: 5_000,
  maxStrangersPerAddress: 8,
  maxStrangersPerNetwork: 32,
  strangerShare: 0.8,
  enrollWithinMs: 60_000,
  frameIdleTimeoutMs: 30_000,
  minBytesPerSecond: 64 * 1024,
  streamsPerSecond: 100,
  streamBurst: 600
}

/**
 * The limits in force: the defaults, then `given`. Raising `inboundConnectionThreshold` says many
 * nodes share one address (a lab behind one NAT, a load test on loopback), so the per-address
 * and per-network caps on handshakes and strangers not given grow by the same factor; the
 * totals (handshakes, connections, the strangers' share) still hold.
 */
export function resolvePeerLimits (given: Partial<PeerLimits> = {}): PeerLimits {
  const limits: PeerLimits = { ...DEFAULT_PEER_LIMITS, ...given }
  const factor = limits.inboundConnectionThreshold / DEFAULT_PEER_LIMITS.inboundConnectionThreshold
  if (factor <= 1) return limits
  for (const key of ['maxHandshakesPerAddress', 'maxHandshakesPerNetwork', 'maxStrangersPerAddress', 'maxStrangersPerNetwork'] as const) {
    if (given[key] === undefined) limits[key] = Math.ceil(DEFAULT_PEER_LIMITS[key] * factor)
  }
  return limits
}

/** The whole time a transfer of `bytes` may take under `limits`. */
export function transferDeadlineMs (bytes: number, limits: PeerLimits): number {
  return REQUEST_TIMEOUT_MS + Math.ceil(bytes / limits.minBytesPerSecond * 1000)
}

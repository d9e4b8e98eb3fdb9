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
  /** Connections still in their handshake at once, across all addresses. */
  maxIncomingPendingConnections: number
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
  maxIncomingPendingConnections: 32,
  frameIdleTimeoutMs: 30_000,
  minBytesPerSecond: 64 * 1024,
  streamsPerSecond: 100,
  streamBurst: 600
}

/** The whole time a transfer of `bytes` may take under `limits`. */
export function transferDeadlineMs (bytes: number, limits: PeerLimits): number {
  return REQUEST_TIMEOUT_MS + Math.ceil(bytes / limits.minBytesPerSecond * 1000)
}

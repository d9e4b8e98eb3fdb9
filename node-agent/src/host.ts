import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import type { Libp2p, Metrics, PrivateKey, ServiceMap } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { ServiceFactoryMap } from 'libp2p'
import type { PrometheusMetricsComponents } from '@libp2p/prometheus-metrics'
import { InboundHandshakes, addressAndNetworkCaps } from '@barnraise/protocol'
import { mayDial } from './peers/peer-exchange.ts'

/**
 * Handshakes in progress one address (an IPv6 /64) may hold at once, and one IPv6 /48; more are
 * refused until one ends. libp2p's cap on handshakes is global and checked before its rate per
 * address, so one address that dialled and never spoke held every place: the agent's peers
 * could not connect until it stopped.
 */
export const AGENT_HANDSHAKES_PER_ADDRESS = 8
export const AGENT_HANDSHAKES_PER_NETWORK = 32

export interface AgentHostOptions {
  /**
   * The most a stream may have in flight towards this agent (yamux's receive window; libp2p's
   * default grows to 16 MiB). Smaller keeps a small message from queueing behind a download's
   * bytes on a slow link; bench/overlap.bench.ts sets it to match the links it emulates.
   */
  maxStreamWindowBytes?: number
  /**
   * Where peers of the run reach this agent for peer exchange (node-agent/src/peers/), e.g.
   * `/ip4/0.0.0.0/tcp/0`; none by default, and then the agent only dials out.
   */
  listen?: string[]
  /**
   * Also reachable through the coordinator's relay (circuit relay v2: a slot on the coordinator,
   * so a peer behind NAT can still be dialled), upgrading a relayed connection to a direct one by
   * hole punching (DCUtR) where both NATs allow it. On with peer exchange.
   */
  relayed?: boolean
  /**
   * The coordinator (`--coordinator`). Given, every dial is gated by `mayDial`: a coordinator on
   * the public internet leaves nothing on the volunteer's own network, and no DNS name but its
   * own, for this host to dial, whoever named the address (its tracker, a peer's identify
   * message, a peer's hole-punching offer).
   */
  coordinator?: Multiaddr
}

/**
 * The agent's libp2p host; `metrics` counts its bytes per protocol. It listens only for peer
 * exchange, and then accepts few connections: its peers, never many at once.
 */
export async function createAgentHost (privateKey: PrivateKey, metrics?: (components: PrometheusMetricsComponents) => Metrics, options: AgentHostOptions = {}): Promise<Libp2p> {
  const services: ServiceFactoryMap<ServiceMap> = { identify: identify(), ping: ping() }
  const coordinator = options.coordinator
  const handshakes = new InboundHandshakes(addressAndNetworkCaps(AGENT_HANDSHAKES_PER_ADDRESS, AGENT_HANDSHAKES_PER_NETWORK))
  if (options.relayed === true) {
    services.dcutr = dcutr()
    // A relay slot is granted after the first identify: the coordinator learns the new address by push.
    services.identifyPush = identifyPush()
  }
  return await createLibp2p({
    privateKey,
    ...(metrics !== undefined ? { metrics } : {}),
    addresses: { listen: [...(options.listen ?? []), ...(options.relayed === true ? ['/p2p-circuit'] : [])] },
    // Peers of a run that start together all dial in within a second, several from one address
    // when they share a NAT (or loopback): libp2p's default of 5 new connections per address per
    // second would turn most of them away. Handshakes are capped per address by the gater, so the
    // global cap is well above one address's share, and a stalled one gives up its place in 5 s.
    connectionManager: { maxConnections: 64, maxIncomingPendingConnections: 128, inboundConnectionThreshold: 64, inboundUpgradeTimeout: 5_000 },
    transports: options.relayed === true ? [tcp(), circuitRelayTransport()] : [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux(options.maxStreamWindowBytes === undefined ? {} : { streamOptions: { maxStreamWindowSize: options.maxStreamWindowBytes } })],
    services,
    connectionGater: {
      // Relayed connections are not counted: their address is the relay's.
      denyInboundConnection: (maConn) => handshakes.deny(maConn),
      denyInboundUpgradedConnection: (_peerId, maConn) => { handshakes.ended(maConn); return false },
      ...(coordinator !== undefined ? { denyDialMultiaddr: (address: Multiaddr) => !mayDial(address, coordinator) } : {})
    }
  })
}

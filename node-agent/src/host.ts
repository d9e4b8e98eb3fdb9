import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { Libp2p, Metrics, PrivateKey } from '@libp2p/interface'
import type { PrometheusMetricsComponents } from '@libp2p/prometheus-metrics'

export interface AgentHostOptions {
  /**
   * The most a stream may have in flight towards this agent (yamux's receive window; libp2p's
   * default grows to 16 MiB). Smaller keeps a small message from queueing behind a download's
   * bytes on a slow link; bench/overlap.bench.ts sets it to match the links it emulates.
   */
  maxStreamWindowBytes?: number
}

/** The agent's libp2p host: it only dials out, so it listens nowhere; `metrics` counts its bytes per protocol. */
export async function createAgentHost (privateKey: PrivateKey, metrics?: (components: PrometheusMetricsComponents) => Metrics, options: AgentHostOptions = {}): Promise<Libp2p> {
  return await createLibp2p({
    privateKey,
    ...(metrics !== undefined ? { metrics } : {}),
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux(options.maxStreamWindowBytes === undefined ? {} : { streamOptions: { maxStreamWindowSize: options.maxStreamWindowBytes } })],
    services: { identify: identify(), ping: ping() }
  })
}

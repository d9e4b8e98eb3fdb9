import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import type { Libp2p, Metrics, PrivateKey } from '@libp2p/interface'
import type { PrometheusMetricsComponents } from '@libp2p/prometheus-metrics'

/** The agent's libp2p host: it only dials out, so it listens nowhere; `metrics` counts its bytes per protocol. */
export async function createAgentHost (privateKey: PrivateKey, metrics?: (components: PrometheusMetricsComponents) => Metrics): Promise<Libp2p> {
  return await createLibp2p({
    privateKey,
    ...(metrics !== undefined ? { metrics } : {}),
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() }
  })
}

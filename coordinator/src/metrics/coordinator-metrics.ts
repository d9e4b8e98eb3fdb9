// What an operator's Prometheus scrapes from a coordinator started with --metrics: the round
// loop (rounds, report verdicts by refusal code), each libp2p protocol's request latency, and,
// from @libp2p/prometheus-metrics on the same registry, bytes per protocol, connections and the
// process's CPU, memory and event-loop lag. No label names a peer: the series stay bounded
// however many nodes join, and nothing here identifies a machine.
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Metrics } from '@libp2p/interface'
import type { PrometheusMetricsComponents } from '@libp2p/prometheus-metrics'

/**
 * Seconds: a heartbeat answers in milliseconds, a checkpoint download can take minutes. Steps of
 * about 2.5× so a p99 read from the buckets (histogram_quantile, bench/scale.bench.ts) is
 * within a factor of two of the truth anywhere in between.
 */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 150, 300]

/** One coordinator's metrics, on a registry of its own (two coordinators in one process do not mix). */
export class CoordinatorMetrics {
  readonly registry = new Registry()
  readonly #rounds: Counter<'outcome'>
  readonly #reports: Counter<'outcome' | 'code'>
  readonly #requests: Histogram<'protocol'>
  readonly #blobBytes: Counter
  readonly #swarm: Counter<'answer'>

  constructor (o: { onlineNodes: () => number }) {
    const registers = [this.registry]
    this.#rounds = new Counter({ name: 'barnraise_rounds_total', help: 'Rounds ended, by how: closed into a checkpoint, or abandoned with nothing accepted', labelNames: ['outcome'], registers })
    this.#reports = new Counter({ name: 'barnraise_reports_total', help: 'Report verdicts: accepted, held for a redundancy twin, or refused with its code', labelNames: ['outcome', 'code'], registers })
    this.#requests = new Histogram({ name: 'barnraise_protocol_request_seconds', help: 'Time to serve one inbound stream, by libp2p protocol', labelNames: ['protocol'], buckets: LATENCY_BUCKETS, registers })
    this.#blobBytes = new Counter({ name: 'barnraise_blob_bytes_served_total', help: 'Blob bytes the coordinator sent to agents (checkpoints, shards, updates): its egress that peer exchange saves', registers })
    this.#swarm = new Counter({ name: 'barnraise_swarm_requests_total', help: 'Peer-exchange requests answered, by whether the asker was handed peers', labelNames: ['answer'], registers })
    new Gauge({ name: 'barnraise_nodes_online', help: 'Enrolled nodes connected now', registers, collect () { this.set(o.onlineNodes()) } })
  }

  /** The libp2p metrics component: bytes per protocol, connections and process metrics, into this registry. */
  libp2p (): (components: PrometheusMetricsComponents) => Metrics {
    return prometheusMetrics({ registry: this.registry, preserveExistingMetrics: true })
  }

  /** A round ended. */
  round (outcome: 'closed' | 'abandoned'): void {
    this.#rounds.inc({ outcome })
  }

  /** A report's verdict; `code` is the refusal's (a bounded set), empty otherwise. */
  report (outcome: 'accepted' | 'held' | 'refused', code: string | null): void {
    this.#reports.inc({ outcome, code: code ?? '' })
  }

  /** Blob bytes about to be sent on the blob protocol. */
  blobServed (bytes: number): void {
    this.#blobBytes.inc(bytes)
  }

  /** A swarm request answered: with peers to ask, or with the coordinator as the only source. */
  swarmAnswered (withPeers: boolean): void {
    this.#swarm.inc({ answer: withPeers ? 'peers' : 'alone' })
  }

  /** Starts timing one inbound stream of `protocol`; call the result when it is served. */
  request (protocol: string): () => void {
    const end = this.#requests.startTimer({ protocol })
    return () => { end() }
  }

  /** The text exposition format, for GET /metrics. */
  async exposition (): Promise<{ contentType: string, body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}

// What an operator's Prometheus scrapes from an agent started with --metrics-port: the work it
// did (units, tokens, compute seconds, its executor's last throughput), the verdicts on its
// reports by code, and, from @libp2p/prometheus-metrics on the same registry, bytes per
// protocol and the process's CPU and memory. GPU memory is what the hardware probe saw.
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Counter, Gauge, Registry } from 'prom-client'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Metrics } from '@libp2p/interface'
import type { PrometheusMetricsComponents } from '@libp2p/prometheus-metrics'
import type { HardwareProfile } from '@barnraise/protocol'

/** The work loop's view of the metrics: one call per thing that happened. */
export interface WorkMetrics {
  /** A unit trained: its tokens, compute seconds and measured throughput, by executor. */
  trained: (executor: string, tokens: number, computeSeconds: number, tokensPerSecond: number) => void
  /** The coordinator's verdict on a report. */
  verdict: (outcome: 'accepted' | 'held' | 'refused', code: string | null) => void
  /** A unit handed back, with the reason's code. */
  declined: (code: string) => void
  /** A scoring task done for another node's report. */
  scored: () => void
}

/** One agent's metrics, on a registry of its own. */
export class AgentMetrics implements WorkMetrics {
  readonly registry = new Registry()
  readonly #tokens: Counter<'executor'>
  readonly #seconds: Counter<'executor'>
  readonly #units: Counter<'executor'>
  readonly #throughput: Gauge<'executor'>
  readonly #verdicts: Counter<'outcome' | 'code'>
  readonly #declined: Counter<'code'>
  readonly #scored: Counter
  readonly #blobBytes: Counter<'source'>

  constructor (hardware: HardwareProfile) {
    const registers = [this.registry]
    this.#units = new Counter({ name: 'barnraise_agent_units_trained_total', help: 'Work units trained, by executor', labelNames: ['executor'], registers })
    this.#tokens = new Counter({ name: 'barnraise_agent_tokens_trained_total', help: 'Tokens trained in work units, by executor', labelNames: ['executor'], registers })
    this.#seconds = new Counter({ name: 'barnraise_agent_compute_seconds_total', help: 'Seconds spent training work units, by executor', labelNames: ['executor'], registers })
    this.#throughput = new Gauge({ name: 'barnraise_agent_tokens_per_second', help: 'The executor\'s measured throughput in its last unit', labelNames: ['executor'], registers })
    this.#verdicts = new Counter({ name: 'barnraise_agent_reports_total', help: 'Verdicts on this agent\'s reports: accepted, held, or refused with its code', labelNames: ['outcome', 'code'], registers })
    this.#declined = new Counter({ name: 'barnraise_agent_units_declined_total', help: 'Work units handed back, by the reason\'s code', labelNames: ['code'], registers })
    this.#blobBytes = new Counter({ name: 'barnraise_agent_blob_bytes_received_total', help: 'Blob bytes fetched by peer exchange, by source: the run\'s other agents or the coordinator', labelNames: ['source'], registers })
    this.#scored = new Counter({ name: 'barnraise_agent_scoring_tasks_total', help: 'Other nodes\' reports this agent scored', registers })
    const gpuMemory = new Gauge({ name: 'barnraise_agent_gpu_memory_bytes', help: 'Memory of each GPU the hardware probe found', labelNames: ['gpu', 'name'], registers })
    hardware.gpus.forEach((g, i) => { gpuMemory.set({ gpu: String(i), name: g.name }, g.memoryMiB * 1024 * 1024) })
    new Gauge({ name: 'barnraise_agent_memory_bytes', help: 'System memory the hardware probe found', registers }).set(hardware.memoryBytes)
  }

  /** The libp2p metrics component: bytes per protocol, connections and process metrics, into this registry. */
  libp2p (): (components: PrometheusMetricsComponents) => Metrics {
    return prometheusMetrics({ registry: this.registry, preserveExistingMetrics: true })
  }

  trained (executor: string, tokens: number, computeSeconds: number, tokensPerSecond: number): void {
    this.#units.inc({ executor })
    this.#tokens.inc({ executor }, tokens)
    this.#seconds.inc({ executor }, computeSeconds)
    this.#throughput.set({ executor }, tokensPerSecond)
  }

  verdict (outcome: 'accepted' | 'held' | 'refused', code: string | null): void {
    this.#verdicts.inc({ outcome, code: code ?? '' })
  }

  declined (code: string): void {
    this.#declined.inc({ code })
  }

  /** Verified blob bytes that arrived through peer exchange, from peers or from the coordinator. */
  blobBytes (source: 'peers' | 'coordinator', bytes: number): void {
    this.#blobBytes.inc({ source }, bytes)
  }

  scored (): void {
    this.#scored.inc()
  }

  /** Serves GET /metrics on host:port (0: any free port); resolves to the server and its URL. */
  async serve (host: string, port: number): Promise<{ server: Server, url: string }> {
    const server = createServer((req, res) => {
      if ((req.url ?? '').split('?')[0] !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'content-type': 'text/plain' })
        res.end('not found; metrics are at /metrics\n')
        return
      }
      this.registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' })
        res.end(req.method === 'HEAD' ? undefined : body)
      }, () => { res.writeHead(500); res.end() })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => { server.off('error', reject); resolve() })
    })
    const address = server.address() as AddressInfo
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
    return { server, url: `http://${shown}:${address.port}/metrics` }
  }
}

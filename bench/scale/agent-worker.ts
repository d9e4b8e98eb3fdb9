// One process of simulated agents for bench/scale.bench.ts (forked with an IPC channel, never
// run by hand). Each agent is a real libp2p node with its own Ed25519 key that dials the
// coordinator over TCP loopback and speaks the real protocols through the agent's own
// CoordinatorClient: enroll (with the shared token, retrying with the agent's backoff when the
// coordinator turns a dial away), heartbeat every `heartbeatMs`, ask for work (sleeping the
// coordinator's retryAfterMs on "wait"), and for a unit sleep `trainMs` instead of training, then
// send a properly signed report whose payload is a valid int8 pseudo-gradient of the run's model
// size (small random values, one per agent, made before the storm), so the coordinator's
// intake does its real work (signature, assignment, sha256, scan, fold, ledger).
//
// Timings go to the parent as events (wall-clock ms, shared by all processes on the machine) and,
// at the end, as per-protocol client-side latencies.
import { join } from 'node:path'
import { canonicalReportMetadata, encodePseudoGradient, loadOrCreatePeerKey } from '@barnraise/protocol'
import type { ReportMetadata, WorkUnit } from '@barnraise/protocol'
import { sha256Hex } from '@barnraise/trainer'
import { createAgentHost } from '../../node-agent/src/host.ts'
import { CoordinatorClient, RefusedError, isRetryable, parseCoordinatorAddress } from '../../node-agent/src/coordinator-client.ts'
import { backoffDelay, sleep } from '../../node-agent/src/backoff.ts'
import { AGENT_VERSION } from '../../node-agent/src/version.ts'
import { addLatency } from './latency-histogram.ts'
import type { LatencyCounts } from './latency-histogram.ts'
import type { AgentEvent, ParentMessage, Protocol, WorkerInit, WorkerMessage } from './messages.ts'

type Libp2p = Awaited<ReturnType<typeof createAgentHost>>
type PrivateKey = Awaited<ReturnType<typeof loadOrCreatePeerKey>>['key']

const send = (m: WorkerMessage): void => { process.send?.(m) }

interface SimAgent {
  index: number
  key: PrivateKey
  libp2p: Libp2p
  client: CoordinatorClient
  payload: Uint8Array
  payloadSha256: string
  status: 'idle' | 'training' | 'uploading'
}

const stop = new AbortController()
const agents: SimAgent[] = []
const latencies: Record<Protocol, LatencyCounts> = { enroll: {}, heartbeat: {}, work: {}, report: {} }
const errors: Record<string, number> = {}
let pending: AgentEvent[] = []
const flush = (): void => {
  if (pending.length === 0) return
  send({ type: 'events', events: pending })
  pending = []
}
const flushTimer = setInterval(flush, 200)
const event = (e: AgentEvent): void => { pending.push(e) }
/** The first message of each kind of error, for BENCH_SCALE_KEEP. */
const firstMessages: Record<string, string> = {}
const errorKinds: Record<string, number> = {}
const failed = (where: string, err: unknown): void => {
  const name = `${where}: ${(err as { code?: string }).code ?? (err as Error).name ?? 'Error'}`
  errors[name] = (errors[name] ?? 0) + 1
  const key = `${name}: ${String((err as Error).message).slice(0, 60)}`
  if (Object.keys(firstMessages).length < 50) firstMessages[key] ??= `${(err as Error).message} (first at ${new Date().toISOString()})`
  errorKinds[key] = (errorKinds[key] ?? 0) + 1
}

/** Times one call of `protocol`; only completed calls count as latency samples. */
async function timed<T> (protocol: Protocol, call: () => Promise<T>): Promise<T> {
  const started = performance.now()
  const result = await call()
  addLatency(latencies[protocol], performance.now() - started)
  return result
}

/** A small random pseudo-gradient, encoded once per agent (distinct bytes, so every report is its own blob). */
function makePayload (paramCount: number, seed: number): Uint8Array {
  const delta = new Float32Array(paramCount)
  let s = (seed * 2654435761) >>> 0
  for (let i = 0; i < paramCount; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    delta[i] = ((s / 2 ** 32) - 0.5) * 2e-3
  }
  return encodePseudoGradient('int8', delta)
}

async function setUp (init: WorkerInit): Promise<void> {
  const address = parseCoordinatorAddress(init.multiaddr)
  for (let i = 0; i < init.count; i++) {
    const index = init.firstIndex + i
    const { key } = await loadOrCreatePeerKey(join(init.keyDir, `agent-${index}.key`))
    const libp2p = await createAgentHost(key)
    const payload = makePayload(init.paramCount, index + 1)
    agents.push({ index, key, libp2p, client: new CoordinatorClient(libp2p, address), payload, payloadSha256: sha256Hex(payload), status: 'idle' })
  }
}

async function enroll (a: SimAgent, init: WorkerInit): Promise<void> {
  for (let attempt = 0; !stop.signal.aborted; attempt++) {
    try {
      await timed('enroll', async () => await a.client.enroll({
        type: 'enroll',
        agentVersion: AGENT_VERSION,
        token: init.token,
        name: `sim-${a.index}`,
        hardware: { hostname: `sim-${a.index}`, platform: process.platform, arch: process.arch, cpuModel: 'simulated', cpuCores: 1, memoryBytes: 2 ** 30, gpus: [] }
      }))
      event({ kind: 'enrolled', agent: a.index, at: Date.now(), attempts: attempt + 1 })
      return
    } catch (err) {
      // A refusal ends the agent, as it ends a real one. A stream the coordinator reset under load
      // (ERR_MALFORMED_MESSAGE) would stop a real agent too (session.ts retries only what
      // isRetryable says); this one counts it and retries, so the storm still completes.
      if (err instanceof RefusedError) throw err
      failed(isRetryable(err) ? 'enroll' : 'enroll, would stop a real agent', err)
      // The real agent's backoff (session.ts): a coordinator at its pending-handshake cap closes the dial.
      await sleep(backoffDelay(attempt), stop.signal)
    }
  }
}

async function heartbeats (a: SimAgent, init: WorkerInit): Promise<void> {
  // Spread over the interval, as agents that enrolled at different moments would be.
  if (!await sleep(Math.random() * init.heartbeatMs, stop.signal)) return
  while (!stop.signal.aborted) {
    try {
      await timed('heartbeat', async () => { await a.client.heartbeat({ type: 'heartbeat', status: a.status }) })
    } catch (err) {
      if (stop.signal.aborted) return
      failed(isRetryable(err) ? 'heartbeat' : 'heartbeat, would stop a real agent', err)
    }
    if (!await sleep(init.heartbeatMs, stop.signal)) return
  }
}

async function report (a: SimAgent, unit: WorkUnit, trainedSeconds: number): Promise<void> {
  if (unit.codec !== 'int8') throw new Error(`the scale bench sends int8 reports; the run uses ${unit.codec}`)
  const tokens = unit.recipe.innerSteps * unit.recipe.batchSize * unit.recipe.seqLen
  const metadata: ReportMetadata = {
    runId: unit.runId,
    round: unit.round,
    assignmentId: unit.assignmentId,
    peerId: a.libp2p.peerId.toString(),
    tokens,
    computeSeconds: Math.round(trainedSeconds * 1000) / 1000,
    lossCurve: [5.545, 5.5],
    codec: unit.codec,
    payloadBytes: a.payload.byteLength,
    payloadSha256: a.payloadSha256,
    executor: 'typescript'
  }
  const signature = Buffer.from(await a.key.sign(canonicalReportMetadata(metadata))).toString('base64')
  a.status = 'uploading'
  event({ kind: 'sent', agent: a.index, round: unit.round, at: Date.now() })
  // Reports are idempotent per unit: resend after a network error, as the work loop does.
  for (let attempt = 0; !stop.signal.aborted; attempt++) {
    try {
      const verdict = await timed('report', async () => await a.client.sendReport({ type: 'report', metadata, signature }, a.payload))
      event({ kind: 'verdict', agent: a.index, round: unit.round, at: Date.now(), ok: verdict.ok, code: verdict.ok ? verdict.outcome : verdict.code })
      break
    } catch (err) {
      if (stop.signal.aborted) return
      failed(isRetryable(err) ? 'report' : 'report, would stop a real agent', err)
      if (!isRetryable(err) || attempt >= 4) break
      await sleep(backoffDelay(attempt), stop.signal)
    }
  }
  a.status = 'idle'
}

async function work (a: SimAgent, init: WorkerInit): Promise<void> {
  let misses = 0
  while (!stop.signal.aborted) {
    let reply
    try {
      reply = await timed('work', async () => await a.client.requestWork())
      misses = 0
    } catch (err) {
      if (stop.signal.aborted) return
      failed(isRetryable(err) ? 'work' : 'work, would stop a real agent', err)
      await sleep(backoffDelay(misses++), stop.signal)
      continue
    }
    if (reply.kind === 'wait') {
      await sleep(init.pollMs ?? reply.retryAfterMs, stop.signal)
      continue
    }
    if (reply.kind !== 'unit') throw new Error(`a simulated agent cannot ${reply.kind}`)
    const unit = reply.unit
    event({ kind: 'unit', agent: a.index, round: unit.round, at: Date.now() })
    a.status = 'training'
    const started = performance.now()
    if (!await sleep(init.trainMs, stop.signal)) return
    await report(a, unit, (performance.now() - started) / 1000)
  }
}

async function run (a: SimAgent, init: WorkerInit): Promise<void> {
  try {
    await enroll(a, init)
    await Promise.all([heartbeats(a, init), work(a, init)])
  } catch (err) {
    if (stop.signal.aborted) return
    failed('agent', err)
    send({ type: 'fatal', message: `agent ${a.index}: ${(err as Error).stack ?? String(err)}` })
  }
}

let init: WorkerInit | undefined

async function shutdown (): Promise<void> {
  stop.abort()
  // Report first: stopping hundreds of hosts can take longer than the parent waits.
  flush()
  clearInterval(flushTimer)
  send({ type: 'done', latencies, errors, firstMessages: Object.fromEntries(Object.entries(firstMessages).map(([k, v]) => [k, `×${errorKinds[k]} ${v}`])), rssBytes: process.memoryUsage().rss })
  // In-flight calls end when their host stops (their connections close).
  await Promise.race([Promise.allSettled(agents.map(async (a) => { await a.libp2p.stop() })), new Promise((resolve) => setTimeout(resolve, 10_000))])
  process.disconnect?.()
  setTimeout(() => process.exit(0), 1_000).unref()
}

process.on('message', (m: ParentMessage) => {
  if (m.type === 'init') {
    init = m.init
    const started = performance.now()
    setUp(m.init).then(() => { send({ type: 'ready', setupMs: performance.now() - started, rssBytes: process.memoryUsage().rss }) }, (err: unknown) => {
      send({ type: 'fatal', message: `set-up failed: ${(err as Error).stack ?? String(err)}` })
    })
  } else if (m.type === 'go') {
    const i = init!
    for (const a of agents) void run(a, i)
  } else if (m.type === 'stop') {
    void shutdown()
  }
})
// The parent went away (it crashed or was killed): stop too, never linger.
process.on('disconnect', () => { if (!stop.signal.aborted) { stop.abort(); setTimeout(() => process.exit(0), 2_000).unref() } })
process.on('unhandledRejection', (err) => { failed('unhandled', err) })

// A coordinator that holds a thousand agents (issue 14):
//   pnpm bench scale        (BENCH_SCALE_SIZES=10,100,1000  BENCH_ROUNDS=3  BENCH_SCALE_TRAIN_MS=3000)
// For each size: one real coordinator (`coordinator serve`, Postgres in a fresh database,
// --metrics), and that many simulated agents in a few processes (bench/scale/agent-worker.ts):
// real libp2p nodes, each with its own key, on TCP loopback, speaking the real enroll,
// heartbeat, work and report protocols; they sleep instead of training and send signed int8
// pseudo-gradients of the tiny model, so report intake does its real work. All agents start
// at once (the enrollment storm); then a run of a few rounds with every agent in every round.
//
// Round overhead: from the last accepted report of round r (its verdict, agent side) to the
// first work unit of round r+1 reaching an agent, as a share of a 60 s round. Memory (resident
// set), CPU and each protocol's p99 latency come from the coordinator's GET /metrics; the agents
// also time every call themselves (client side, to 2%). The agents share this machine's cores
// with the coordinator and Postgres, so every figure is an upper bound. docs/scaling.md reads
// the figures. BENCH_SCALE_KEEP=DIR keeps each size's coordinator log and agent events;
// BENCH_SCALE_POLL_MS=N makes waiting agents poll every N ms (an experiment, not what agents do).
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { countParams, presetConfig } from '@barnraise/trainer'
import { openDatabase } from '@barnraise/coordinator'
import { createTestDatabase } from '../test/support/postgres.ts'
import { createRunViaCli, tinyRunSpec, waitForRun } from '../test/support/runs.ts'
import { AgentPool } from './scale/agent-pool.ts'
import type { PoolResult } from './scale/agent-pool.ts'
import { startBenchCoordinator } from './scale/coordinator-process.ts'
import type { BenchCoordinator } from './scale/coordinator-process.ts'
import { PROTOCOLS } from './scale/messages.ts'
import { latencyCount, latencyQuantile } from './scale/latency-histogram.ts'
import type { AgentEvent, Protocol } from './scale/messages.ts'
import { bucketsOf, histogramQuantile, scrape, valueOf } from './scale/prometheus.ts'
import type { Sample } from './scale/prometheus.ts'

const SIZES = (process.env.BENCH_SCALE_SIZES ?? '10,100,1000').split(',').map((s) => Number(s.trim()))
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const TRAIN_MS = Number(process.env.BENCH_SCALE_TRAIN_MS ?? 3000)
/** The agent's default --heartbeat-interval. */
const HEARTBEAT_MS = 10_000
/** The round the overhead is a share of. */
const ROUND_SECONDS = 60
const PRESET = 'tiny'
const KEEP = process.env.BENCH_SCALE_KEEP
/** An experiment: agents wait this long between "wait" replies instead of the coordinator's retryAfterMs. */
const POLL_MS = process.env.BENCH_SCALE_POLL_MS === undefined ? undefined : Number(process.env.BENCH_SCALE_POLL_MS)
const MiB = 1024 * 1024

if (SIZES.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(ROUNDS) || ROUNDS < 2) {
  process.stderr.write('BENCH_SCALE_SIZES must be whole numbers (e.g. 10,100,1000) and BENCH_ROUNDS at least 2\n')
  process.exit(2)
}

const say = (line: string): void => { process.stdout.write(line + '\n') }
const num = (x: number): string => Math.round(x).toLocaleString('en-US')
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
const pct = (ms: number): string => `${(100 * ms / 1000 / ROUND_SECONDS).toFixed(1)}%`
const mib = (bytes: number): string => `${Math.round(bytes / MiB)} MiB`
const latency = (s: number): string => Number.isNaN(s) ? '-' : s < 1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(2)} s`

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Everything a size's run measured. */
interface SizeResult {
  agents: number
  processes: number
  stormMs: number
  enrollAttempts: { total: number, max: number }
  /**
   * Per round transition r → r+1, split at the rounds' own rows: closing (last verdict → the
   * round's closed_at, stamped in the closing transaction after the checkpoint is written),
   * clean-up and the next tick (→ the next round's opened_at, its transaction's start: the
   * closed round's report blobs deleted, retention, the engine's next tick, eligible nodes),
   * opening and the first unit (the assignments written, then the first agent's poll).
   */
  transitions: Array<{ round: number, overheadMs: number, closeMs: number, toOpenMs: number, handOutMs: number }>
  /** per round: first unit → last unit handed out, first report sent → last verdict */
  rounds: Array<{ round: number, handOutSpreadMs: number, intakeMs: number }>
  verdicts: Record<string, number>
  rss: { idle: number, enrolled: number, peak: number, end: number }
  heapEnd: number
  /** the worst event-loop delay p99 the coordinator reported in any 2 s window */
  lagSeconds: number
  cpu: { storm: number, run: number }
  /** server side, from /metrics: count and p99 per protocol */
  server: Record<Protocol, { count: number, p99: number }>
  /** client side, from the agents' own timings (seconds) */
  client: Record<Protocol, { count: number, p99: number }>
  agentErrors: Record<string, number>
  workerRss: number[]
  runSeconds: number
}

/** What must be undone whatever happens: child processes, databases, temporary folders. */
const cleanups: Array<() => Promise<void>> = []
async function cleanUp (): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c().catch((err: unknown) => { process.stderr.write(`clean-up: ${(err as Error).message}\n`) })
}
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return
    interrupted = true
    process.stderr.write(`\n${signal}: stopping the agents and the coordinator, dropping the database\n`)
    void cleanUp().finally(() => process.exit(130))
  })
}

const PROTOCOL_IDS: Record<Protocol, string> = {
  enroll: '/barnraise/enroll/1.0.0',
  heartbeat: '/barnraise/heartbeat/1.0.0',
  work: '/barnraise/work/1.0.0',
  report: '/barnraise/report/1.0.0'
}

/** Samples the coordinator's /metrics every 2 s: its peak resident memory and worst event-loop lag (p99 of each 2 s). */
function sampler (url: string): { peak: () => number, lag: () => number, stop: () => void } {
  let peak = 0
  let lag = 0
  const timer = setInterval(() => {
    scrape(url).then((s) => {
      peak = Math.max(peak, valueOf(s, 'process_resident_memory_bytes') ?? 0)
      lag = Math.max(lag, valueOf(s, 'nodejs_eventloop_lag_p99_seconds') ?? 0)
    }, () => {})
  }, 2_000)
  return { peak: () => peak, lag: () => lag, stop: () => { clearInterval(timer) } }
}

const rssOf = (s: Sample[]): number => valueOf(s, 'process_resident_memory_bytes') ?? NaN
const cpuOf = (s: Sample[]): number => valueOf(s, 'process_cpu_seconds_total') ?? NaN

async function measure (agents: number): Promise<SizeResult> {
  const processes = Math.min(4, Math.max(1, Math.ceil(agents / 250)))
  const local: Array<() => Promise<void>> = []
  const undo = (f: () => Promise<void>): void => { local.push(f); cleanups.push(f) }
  const release = async (): Promise<void> => {
    for (const f of local.splice(0).reverse()) {
      const i = cleanups.indexOf(f)
      if (i >= 0) cleanups.splice(i, 1)
      await f().catch((err: unknown) => { process.stderr.write(`clean-up: ${(err as Error).message}\n`) })
    }
  }
  let coordinator: BenchCoordinator | undefined
  let pool: AgentPool | undefined
  try {
    const database = await createTestDatabase()
    undo(database.drop)
    const tmp = await mkdtemp(join(tmpdir(), 'barnraise-scale-'))
    undo(async () => { await rm(tmp, { recursive: true, force: true }) })
    // 1,000 agents share 127.0.0.1: the per-address connection rate (5/s by default) would make
    // the storm last minutes, so this bench raises it; total connections get headroom above the
    // agents (a reconnecting agent briefly holds two). The handshake cap stays at its default.
    coordinator = await startBenchCoordinator({
      dataDir: join(tmp, 'coordinator'),
      databaseUrl: database.url,
      args: ['--connections-per-ip', String(Math.max(5, agents * 2)), '--max-connections', String(Math.max(1000, Math.ceil(agents * 1.2)))]
    })
    const c = coordinator
    undo(async () => { await c.stop() })
    const token = await c.createToken('Scale Lab', agents)
    const idle = await scrape(c.url)
    const paramCount = countParams(presetConfig(PRESET))
    let setupMs: number
    ({ pool, setupMs } = await AgentPool.start({ multiaddr: c.multiaddr, token, total: agents, processes, heartbeatMs: HEARTBEAT_MS, trainMs: TRAIN_MS, paramCount, keyDir: join(tmp, 'keys'), ...(POLL_MS !== undefined ? { pollMs: POLL_MS } : {}) }))
    const agentPool = pool
    let poolResult: PoolResult | undefined
    const stopPool = async (): Promise<void> => {
      poolResult ??= await agentPool.stop()
      if (KEEP !== undefined) await writeFile(join(KEEP, `agent-errors-${agents}.json`), JSON.stringify({ counts: poolResult.errors, first: poolResult.firstMessages }, null, 1))
    }
    undo(stopPool)
    say(`  ${num(agents)} agents in ${processes} process${processes === 1 ? '' : 'es'} ready (${secs(setupMs)}); enrollment storm`)
    const sampling = sampler(c.url)
    undo(async () => { sampling.stop() })

    // The storm: every agent enrolls at once.
    const stormStart = Date.now()
    pool.go()
    const enrolled = (events: AgentEvent[]): AgentEvent[] => events.filter((e) => e.kind === 'enrolled')
    await pool.until((events) => enrolled(events).length >= agents, 300_000, `${agents} enrollments`)
    const enrolledEvents = enrolled(pool.events) as Array<Extract<AgentEvent, { kind: 'enrolled' }>>
    const stormMs = Math.max(...enrolledEvents.map((e) => e.at)) - stormStart
    const attempts = enrolledEvents.map((e) => e.attempts)
    const afterStorm = await scrape(c.url)
    say(`  enrolled in ${secs(stormMs)}; run of ${ROUNDS} rounds, ${secs(TRAIN_MS)} of simulated training each`)

    // The run: every agent in every round; the deadline far enough that rounds end at quorum.
    const runStart = Date.now()
    const runId = await createRunViaCli(c.dataDir, tinyRunSpec({
      name: `scale ${agents}`, minNodes: agents, maxNodes: agents, rounds: ROUNDS, roundDeadlineSeconds: 600, evalBatches: 2
    }), { DATABASE_URL: database.url })
    const verdictsOf = (events: AgentEvent[], round: number): number => events.filter((e) => e.kind === 'verdict' && e.round === round).length
    let reported = 0
    await pool.until((events) => {
      while (reported < ROUNDS && verdictsOf(events, reported + 1) >= agents) {
        reported++
        say(`  round ${reported} reported (${secs(Date.now() - runStart)} since the run started)`)
      }
      return reported >= ROUNDS
    }, 120_000 + ROUNDS * (TRAIN_MS + 150 * agents + 20_000), `${ROUNDS} rounds of ${agents} reports`)
    await waitForRun(c.url, runId, (r) => r.status === 'completed', 120_000)
    const runSeconds = (Date.now() - runStart) / 1000
    const end = await scrape(c.url)
    sampling.stop()

    // The rounds' own timestamps, for where the overhead goes.
    const opened = await openDatabase({ dataDir: join(tmp, 'reader'), databaseUrl: database.url })
    const roundRows = await opened.db.selectFrom('rounds').select(['number', 'opened_at', 'closed_at']).where('run_id', '=', runId).where('status', '=', 'closed').orderBy('number').execute()
    await opened.close()
    await stopPool()
    const result = poolResult!

    const events = pool.events
    const at = (kind: AgentEvent['kind'], round: number, ok?: boolean): number[] =>
      events.filter((e) => e.kind === kind && 'round' in e && e.round === round && (ok === undefined || (e.kind === 'verdict' && e.ok === ok))).map((e) => e.at)
    const transitions: SizeResult['transitions'] = []
    const rounds: SizeResult['rounds'] = []
    for (let r = 1; r <= ROUNDS; r++) {
      const units = at('unit', r)
      const sent = at('sent', r)
      const verdicts = at('verdict', r)
      rounds.push({ round: r, handOutSpreadMs: Math.max(...units) - Math.min(...units), intakeMs: Math.max(...verdicts) - Math.min(...sent) })
      if (r === ROUNDS) continue
      const lastAccepted = Math.max(...at('verdict', r, true))
      const firstUnit = Math.min(...at('unit', r + 1))
      const closed = roundRows.find((x) => x.number === r)?.closed_at?.getTime() ?? NaN
      const nextOpened = roundRows.find((x) => x.number === r + 1)?.opened_at.getTime() ?? NaN
      transitions.push({ round: r, overheadMs: firstUnit - lastAccepted, closeMs: closed - lastAccepted, toOpenMs: nextOpened - closed, handOutMs: firstUnit - nextOpened })
    }
    const verdicts: Record<string, number> = {}
    for (const e of events) if (e.kind === 'verdict') verdicts[e.code] = (verdicts[e.code] ?? 0) + 1
    const server = {} as SizeResult['server']
    const client = {} as SizeResult['client']
    for (const p of PROTOCOLS) {
      const buckets = bucketsOf(end, 'barnraise_protocol_request_seconds', { protocol: PROTOCOL_IDS[p] })
      server[p] = { count: buckets.at(-1)?.count ?? 0, p99: histogramQuantile(0.99, buckets) }
      client[p] = { count: latencyCount(result.latencies[p]), p99: latencyQuantile(result.latencies[p], 0.99) / 1000 }
    }
    return {
      agents,
      processes,
      stormMs,
      enrollAttempts: { total: attempts.reduce((a, b) => a + b, 0), max: Math.max(...attempts) },
      transitions,
      rounds,
      verdicts,
      rss: { idle: rssOf(idle), enrolled: rssOf(afterStorm), peak: Math.max(sampling.peak(), rssOf(end), rssOf(afterStorm)), end: rssOf(end) },
      heapEnd: valueOf(end, 'nodejs_heap_size_used_bytes') ?? NaN,
      lagSeconds: sampling.lag(),
      cpu: { storm: cpuOf(afterStorm) - cpuOf(idle), run: cpuOf(end) - cpuOf(afterStorm) },
      server,
      client,
      agentErrors: result.errors,
      workerRss: result.workerRss,
      runSeconds
    }
  } catch (err) {
    if (coordinator !== undefined) process.stderr.write(`coordinator log (last lines):\n${coordinator.logTail()}\n`)
    throw err
  } finally {
    // BENCH_SCALE_KEEP=DIR keeps the coordinator's log and the agents' events for a closer look.
    if (KEEP !== undefined) {
      await mkdir(KEEP, { recursive: true })
      if (coordinator !== undefined) await copyFile(coordinator.logFile, join(KEEP, `coordinator-${agents}.log`)).catch(() => {})
      if (pool !== undefined) await writeFile(join(KEEP, `events-${agents}.json`), JSON.stringify(pool.events))
    }
    await release()
  }
}

function printSize (r: SizeResult): void {
  const overheads = r.transitions.map((t) => t.overheadMs)
  const reports = r.agents * ROUNDS
  say(`\n${num(r.agents)} agents (${r.processes} agent process${r.processes === 1 ? '' : 'es'}), ${ROUNDS} rounds`)
  say(`  enrollment storm      ${secs(r.stormMs)} for ${num(r.agents)} agents (${num(r.enrollAttempts.total - r.agents)} dials turned away and retried; at most ${r.enrollAttempts.max} attempts for one agent); coordinator CPU ${r.cpu.storm.toFixed(1)} s`)
  say(`  round overhead        median ${secs(median(overheads))} (${pct(median(overheads))} of a ${ROUND_SECONDS} s round), max ${secs(Math.max(...overheads))} (${pct(Math.max(...overheads))})`)
  for (const t of r.transitions) {
    say(`    round ${t.round} → ${t.round + 1}: ${secs(t.overheadMs)} = closing ${secs(t.closeMs)} + clean-up and the next tick ${secs(t.toOpenMs)} + opening and the first unit ${secs(t.handOutMs)}`)
  }
  const intake = median(r.rounds.map((x) => x.intakeMs))
  say(`  report intake         median ${secs(intake)} a round (first report sent → last verdict: ${(intake / r.agents).toFixed(1)} ms a report); units handed out over ${secs(median(r.rounds.map((x) => x.handOutSpreadMs)))}`)
  say(`  coordinator CPU       ${(r.cpu.run / ROUNDS).toFixed(2)} s a round, ${(1000 * r.cpu.run / reports).toFixed(1)} ms per report (everything the run took: polls, heartbeats, intake, closes); busy ${(100 * r.cpu.run / r.runSeconds).toFixed(0)}% of one core over ${r.runSeconds.toFixed(0)} s; event-loop delay p99 up to ${latency(r.lagSeconds)}`)
  say(`  coordinator memory    RSS idle ${mib(r.rss.idle)}, enrolled ${mib(r.rss.enrolled)}, peak ${mib(r.rss.peak)}, end ${mib(r.rss.end)}; heap used at the end ${mib(r.heapEnd)}`)
  say(`  verdicts              ${Object.entries(r.verdicts).map(([k, n]) => `${k} ${num(n)}`).join(', ')}`)
  const errors = Object.entries(r.agentErrors)
  if (errors.length > 0) say(`  agent-side errors     ${errors.map(([k, n]) => `${k} ×${num(n)}`).join(', ')}`)
  say(`  agent processes       ${r.workerRss.map(mib).join(', ')} resident at the end`)
  say(`  ${'protocol'.padEnd(11)} ${'requests'.padStart(9)}  ${'p99 (server, /metrics)'.padStart(22)}  ${'p99 (client)'.padStart(12)}`)
  for (const p of PROTOCOLS) {
    say(`  ${p.padEnd(11)} ${num(r.server[p].count).padStart(9)}  ${latency(r.server[p].p99).padStart(22)}  ${latency(r.client[p].p99).padStart(12)}`)
  }
}

say(`scale: ${SIZES.map(num).join(', ')} agents; model ${PRESET} (${num(countParams(presetConfig(PRESET)))} parameters, int8 reports); ${ROUNDS} rounds of ${secs(TRAIN_MS)} simulated training; heartbeats every ${HEARTBEAT_MS / 1000} s${POLL_MS !== undefined ? `; agents poll for work every ${POLL_MS} ms (BENCH_SCALE_POLL_MS), not as the coordinator asks` : ''}`)
const results: SizeResult[] = []
try {
  for (const agents of SIZES) {
    say(`\n== ${num(agents)} agents`)
    const r = await measure(agents)
    results.push(r)
    printSize(r)
  }
} catch (err) {
  process.stderr.write(`scale bench failed: ${(err as Error).stack ?? String(err)}\n`)
  await cleanUp()
  process.exit(1)
}
await cleanUp()

say('\nsummary')
say(`  ${'agents'.padStart(6)}  ${'storm'.padStart(8)}  ${'overhead (median, max)'.padStart(24)}  ${'RSS peak'.padStart(9)}  ${'CPU/round'.padStart(9)}  ${'p99 enroll'.padStart(10)}  ${'heartbeat'.padStart(9)}  ${'work'.padStart(9)}  ${'report'.padStart(9)}   (p99 from /metrics)`)
for (const r of results) {
  const o = r.transitions.map((t) => t.overheadMs)
  say(`  ${num(r.agents).padStart(6)}  ${secs(r.stormMs).padStart(8)}  ${`${pct(median(o))}, ${pct(Math.max(...o))}`.padStart(24)}  ${mib(r.rss.peak).padStart(9)}  ${`${(r.cpu.run / ROUNDS).toFixed(2)} s`.padStart(9)}  ${latency(r.server.enroll.p99).padStart(10)}  ${latency(r.server.heartbeat.p99).padStart(9)}  ${latency(r.server.work.p99).padStart(9)}  ${latency(r.server.report.p99).padStart(9)}`)
}
const sorted = [...results].sort((a, b) => a.agents - b.agents)
for (let i = 1; i < sorted.length; i++) {
  const a = sorted[i - 1]!
  const b = sorted[i]!
  const per = (f: (r: SizeResult) => number): number => (f(b) - f(a)) / (b.agents - a.agents)
  say(`  ${num(a.agents)} → ${num(b.agents)} agents: memory ${(per((r) => r.rss.peak) / 1024).toFixed(1)} KiB per agent (peak RSS), ${(per((r) => r.rss.enrolled) / 1024).toFixed(1)} KiB (after enrollment); ` +
    `CPU ${(1000 * per((r) => r.cpu.run / ROUNDS)).toFixed(1)} ms per agent per round; overhead ${per((r) => median(r.transitions.map((t) => t.overheadMs))).toFixed(2)} ms per agent`)
}
const largest = sorted.at(-1)!
const overhead = median(largest.transitions.map((t) => t.overheadMs))
say(`  goal: round overhead under 5% of a ${ROUND_SECONDS} s round at ${num(largest.agents)} agents: ${100 * overhead / 1000 / ROUND_SECONDS < 5 ? 'met' : 'missed'} (${pct(overhead)})`)
say(`scale: ${num(largest.agents)} agents, round overhead ${pct(overhead)} of a ${ROUND_SECONDS} s round, coordinator memory ${num(largest.rss.peak / MiB)} MiB`)

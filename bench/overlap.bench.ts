// Donated GPUs never wait (issue 15):
//   pnpm bench overlap   (BENCH_OVERLAP_NODES=4  BENCH_ROUNDS=4  BENCH_OVERLAP_TIME_SCALE=4  BENCH_OVERLAP_CODECS=int8,topk
//                         BENCH_OVERLAP_MBITS=100,1000  BENCH_OVERLAP_LOG=file)
//
// Per-node utilization (compute seconds ÷ wall seconds) of one run trained with rounds one at a
// time and one with overlapped rounds (spec `overlap: delayed`), over links of 100 Mbit/s and
// 1 Gbit/s, for the 125m preset's sizes.
//
// What is real: one coordinator process (PGlite), N agents running the real session and work
// loop (enroll, heartbeat, work, look-ahead, base download or rebuild, int8/topk encoding,
// signed report upload), each behind its own shaped TCP link on loopback (test/support/
// shaped-link.ts: bandwidth each way plus one-way latency). What is simulated: the GPU. A
// timed executor (bench/overlap/timed-executor.ts) waits as long as a 125m unit takes on an
// H100 at 40% MFU, and the model on the wire has about 3M parameters, with every link's bandwidth
// scaled down by the ratio of the two parameter counts, so each transfer takes as long as the
// 125m's would. Then everything runs BENCH_OVERLAP_TIME_SCALE× faster (compute, bandwidth and
// latency alike). What does not scale: the coordinator's own work (closing a round, writing a
// checkpoint), which makes both figures a little lower than at full scale. Waiting agents learn
// of the next round when it opens (the coordinator holds their work request), not a poll later.
//
// Utilization of a node: the time its executor computed on units of the run, over the time from
// its first unit's start to its last unit's end (the first base download, a join cost, is out).
import { appendFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreatePeerKey } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import { countParams, presetConfig } from '@barnraise/trainer'
import { createAgentHost } from '../node-agent/src/host.ts'
import { parseCoordinatorAddress } from '../node-agent/src/coordinator-client.ts'
import { probeHardware } from '../node-agent/src/hardware.ts'
import { runSession } from '../node-agent/src/session.ts'
import { startCoordinator } from '../test/support/cluster.ts'
import { createRunViaCli, waitForRun } from '../test/support/runs.ts'
import { startShapedLink } from '../test/support/shaped-link.ts'
import type { LinkShape, ShapedLink } from '../test/support/shaped-link.ts'
import { timedExecutor } from './overlap/timed-executor.ts'
import type { ComputeSpan } from './overlap/timed-executor.ts'

const NODES = Number(process.env.BENCH_OVERLAP_NODES ?? 4)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4)
const TIME_SCALE = Number(process.env.BENCH_OVERLAP_TIME_SCALE ?? 4)
const CODECS = (process.env.BENCH_OVERLAP_CODECS ?? 'int8,topk').split(',').map((c) => c.trim()) as CodecName[]
const LINKS = (process.env.BENCH_OVERLAP_MBITS ?? '100,1000').split(',').map((m) => Number(m.trim())).map((mbit) => ({ name: mbit >= 1000 ? `${mbit / 1000} Gbit/s` : `${mbit} Mbit/s`, bitsPerSecond: mbit * 1e6 }))
/** A file for every agent line, with the time: what each node did when. */
const LOG = process.env.BENCH_OVERLAP_LOG
/** One way; 50 ms round trips, a link across a country. */
const LATENCY_MS = 25

// The scenario: one 125m unit (DiLoCo's H = 500 inner steps) on an H100 at 40% MFU.
const SCENARIO_PRESET = '125m'
const SCENARIO_UNIT = { innerSteps: 500, batchSize: 16, seqLen: 2048 }
const H100_BF16_DENSE_FLOPS = 989.4e12
const MFU = 0.4
/**
 * The model on the wire: about 3M parameters, so a scaled 100 Mbit/s link still moves over a
 * megabyte a second (a slower one would hold a heartbeat behind a download's buffered bytes far
 * longer than a real link of the scenario's speed would) while the 2-core machine's agents and
 * coordinator keep up with its encoding and folding.
 */
const WIRE_CONFIG = { ...presetConfig('small'), hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2 }

if (!Number.isInteger(NODES) || NODES < 1 || LINKS.some((l) => !(l.bitsPerSecond > 0)) || !Number.isInteger(ROUNDS) || ROUNDS < 3 || !(TIME_SCALE >= 1) || CODECS.some((c) => !['int8', 'fp16', 'fp32', 'topk'].includes(c))) {
  process.stderr.write('BENCH_OVERLAP_NODES must be at least 1, BENCH_ROUNDS at least 3, BENCH_OVERLAP_TIME_SCALE at least 1, BENCH_OVERLAP_MBITS a list of link speeds in Mbit/s, and BENCH_OVERLAP_CODECS a list of int8, fp16, fp32, topk\n')
  process.exit(2)
}

const say = (line: string): void => { process.stdout.write(line + '\n') }
const pct = (x: number): string => `${Math.round(100 * x)}%`

const scenarioParams = countParams(presetConfig(SCENARIO_PRESET))
const wireParams = countParams(WIRE_CONFIG)
const unitTokens = SCENARIO_UNIT.innerSteps * SCENARIO_UNIT.batchSize * SCENARIO_UNIT.seqLen
const computeSeconds = 6 * scenarioParams * unitTokens / (H100_BF16_DENSE_FLOPS * MFU)
/** Bytes on the wire per byte of the scenario: the small model stands in for the 125m. */
const byteScale = wireParams / scenarioParams

interface Agent { libp2p: Awaited<ReturnType<typeof createAgentHost>>, link: ShapedLink, executor: ReturnType<typeof timedExecutor>, dataDir: string, done: Promise<void> }

/** Mean over nodes of compute ÷ wall, from each node's first unit start to its last unit end in the run. */
function utilization (spansByNode: ComputeSpan[][]): { mean: number, min: number } {
  const each = spansByNode.map((spans) => {
    if (spans.length === 0) return 0
    const start = Math.min(...spans.map((s) => s.start))
    const end = Math.max(...spans.map((s) => s.end))
    return spans.reduce((t, s) => t + s.end - s.start, 0) / (end - start)
  })
  return { mean: each.reduce((a, b) => a + b, 0) / each.length, min: Math.min(...each) }
}

async function main (): Promise<void> {
  say(`overlap: ${NODES} nodes, ${ROUNDS} rounds a run; scenario: the ${SCENARIO_PRESET} preset (${(scenarioParams / 1e6).toFixed(0)}M parameters), a unit of ${SCENARIO_UNIT.innerSteps} steps × ${SCENARIO_UNIT.batchSize} × ${SCENARIO_UNIT.seqLen} tokens`)
  say(`overlap: compute ${computeSeconds.toFixed(1)} s a unit (an H100 at ${pct(MFU)} MFU of ${(H100_BF16_DENSE_FLOPS / 1e12).toFixed(0)} TFLOP/s); on the wire a ${(wireParams / 1e6).toFixed(2)}M-parameter model over links scaled by ${byteScale.toExponential(2)}; time ${TIME_SCALE}× faster; ${LATENCY_MS * 2} ms round trips`)
  const coordinator = await startCoordinator({ env: { BARNRAISE_LOG: 'silent' } })
  const m = /^\/ip4\/127\.0\.0\.1\/tcp\/(\d+)\/p2p\/(\S+)$/.exec(coordinator.multiaddr)
  if (m === null) throw new Error(`unexpected coordinator address ${coordinator.multiaddr}`)
  const coordinatorPort = Number(m[1])
  const shape: LinkShape = { bitsPerSecond: 1e9, latencyMs: LATENCY_MS / TIME_SCALE }
  const stop = new AbortController()
  const agents: Agent[] = []
  const rows: Array<{ codec: CodecName, link: string, blocking: number, overlapped: number, overlappedMin: number }> = []
  try {
    const token = await coordinator.createToken('Overlap Bench Lab', { uses: NODES })
    const hardware = await probeHardware()
    for (let i = 0; i < NODES; i++) {
      const dataDir = await mkdtemp(join(tmpdir(), 'barnraise-overlap-agent-'))
      const { key } = await loadOrCreatePeerKey(join(dataDir, 'peer.key'))
      // libp2p's receive window grows to 16 MiB, over a second of a real 100 Mbit/s link but many
      // seconds of the scaled one: held to 256 KiB (the least yamux allows), a heartbeat waits
      // behind about as much of a download as it would on the real link.
      const libp2p = await createAgentHost(key, undefined, { maxStreamWindowBytes: 256 * 1024 })
      const link = await startShapedLink(coordinatorPort, shape)
      const executor = timedExecutor(computeSeconds * 1000 / TIME_SCALE)
      const done = runSession({
        libp2p,
        coordinator: parseCoordinatorAddress(`/ip4/127.0.0.1/tcp/${link.port}/p2p/${m[2]}`),
        dataDir,
        hardware,
        token,
        name: `bench-${i}`,
        heartbeatIntervalMs: 10_000,
        signal: stop.signal,
        say: (line) => {
          if (LOG !== undefined) appendFileSync(LOG, `${(performance.now() / 1000).toFixed(3)} node ${i}: ${line}\n`)
          if (/refused|failed|could not|unreachable/.test(line)) process.stderr.write(`node ${i}: ${line}\n`)
        },
        verbose: LOG !== undefined,
        work: { executor, key }
      })
      agents.push({ libp2p, link, executor, dataDir, done })
    }
    for (const codec of CODECS) {
      for (const l of LINKS) {
        shape.bitsPerSecond = l.bitsPerSecond * byteScale * TIME_SCALE
        const result: Record<string, { mean: number, min: number }> = {}
        for (const overlap of ['none', 'delayed'] as const) {
          for (const a of agents) a.executor.spans.length = 0
          const started = performance.now()
          const runId = await createRunViaCli(coordinator.dataDir, {
            name: `overlap bench ${codec} ${l.name} ${overlap}`,
            model: { config: WIRE_CONFIG },
            dataset: { source: 'demo-corpus' },
            recipe: { innerSteps: 4, batchSize: 2, seqLen: 32, warmupSteps: 1 },
            codec,
            overlap,
            rounds: ROUNDS,
            minNodes: NODES,
            maxNodes: NODES,
            roundDeadlineSeconds: 3600,
            evalBatches: 1,
            // A fresh initial checkpoint each run: no node starts with the base in its cache.
            seed: rows.length * 2 + (overlap === 'none' ? 1 : 2)
          })
          await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 1_800_000, { coordinator: coordinator.process.output })
          result[overlap] = utilization(agents.map((a) => a.executor.spans))
          if (LOG !== undefined) for (const [i, a] of agents.entries()) appendFileSync(LOG, `spans node ${i}, ${codec} ${l.name} ${overlap}: ${a.executor.spans.map((x) => `r${x.round} ${(x.start / 1000).toFixed(2)}-${(x.end / 1000).toFixed(2)}`).join(', ')}\n`)
          say(`overlap: ${codec} at ${l.name}, ${overlap === 'none' ? 'blocking  ' : 'overlapped'}: utilization ${pct(result[overlap].mean)} (lowest node ${pct(result[overlap].min)}), ${((performance.now() - started) / 1000).toFixed(0)} s`)
        }
        rows.push({ codec, link: l.name, blocking: result.none!.mean, overlapped: result.delayed!.mean, overlappedMin: result.delayed!.min })
      }
    }
  } finally {
    stop.abort()
    await Promise.allSettled(agents.map(async (a) => { await a.done }))
    for (const a of agents) {
      await a.libp2p.stop()
      await a.link.close()
      await rm(a.dataDir, { recursive: true, force: true })
    }
    await coordinator.stop()
  }
  say('')
  say('codec  link        blocking  overlapped (lowest node)')
  for (const r of rows) say(`${r.codec.padEnd(6)} ${r.link.padEnd(11)} ${pct(r.blocking).padStart(8)}  ${pct(r.overlapped).padStart(10)} (${pct(r.overlappedMin)})`)
  const headline = rows.find((r) => r.codec === 'topk' && r.link === '100 Mbit/s') ?? rows.find((r) => r.link === '100 Mbit/s') ?? rows[0]!
  say(`overlap: utilization ${pct(headline.overlapped)} at ${headline.link} (blocking ${pct(headline.blocking)}), ${headline.codec}, ${NODES} nodes, ${SCENARIO_PRESET} sizes`)
}

await main()

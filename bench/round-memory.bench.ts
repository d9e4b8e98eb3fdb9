// How much memory the coordinator holds while a round closes, in models (fp32 bytes of one model):
//   pnpm bench round-memory        (BENCH_PARAMS=40000000  BENCH_NODES=3  BENCH_CODEC=int8  BENCH_BROADCAST=dense|sparse)
// The parent creates a run of a byte-level Llama of about BENCH_PARAMS parameters (Postgres in a
// fresh database, the disk blob store) and writes its nodes' report payloads to files. A child
// process then runs the round loop as coordinator.ts builds it (RunCache, ReportIntake,
// RoundEngine) on them, its validation losses left to the background evaluation as a 1B model's
// are (an evaluator that streams the checkpoint away, as the torch one does). BENCH_NODES nodes
// send signed reports through the intake; the engine's tick closes round 1 (no momentum yet) and
// round 2 (momentum 0.9), with no node live so that no next round opens in the same tick, then
// round 3 with its nodes live: that tick opens round 4 as soon as round 3 is closed, its sum
// made there and then (RunCache.openRound: in round 3's spent sum, else a new one while the spent
// one may not be collected yet). Before each close the child collects its garbage and resets its
// peak (VmHWM, through /proc/self/clear_refs); after it, reads the peak, and the resident set
// before any collection. The opening's own peak is read as well: reset as RunCache.openRound
// begins, with no collection forced. Figures are the peak less the child's own resident set
// before it held a model (Node, the Postgres client, modules), over 4 × parameters bytes. A
// second child fills one model-sized Float32Array: the yardstick, near 1.00× when the method is
// sound.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { canonicalReportMetadata, encodePseudoGradient, llamaConfigSchema, loadOrCreatePeerKey, readWholeFile } from '@barnraise/protocol'
import type { CodecName, ReportHeader, ReportMetadata } from '@barnraise/protocol'
import { countParams, presetConfig } from '@barnraise/trainer'
import { createTestDatabase } from '../test/support/postgres.ts'
import { openDatabase } from '../coordinator/src/db/open-database.ts'
import { DiskBlobStore } from '../coordinator/src/blobs/blob-store.ts'
import { BackgroundEvaluation } from '../coordinator/src/checkpoints/background-evaluation.ts'
import type { CheckpointEvaluator } from '../coordinator/src/checkpoints/background-evaluation.ts'
import { BlobPins } from '../coordinator/src/blobs/blob-pins.ts'
import { ChangeFeed } from '../coordinator/src/events/change-feed.ts'
import { createLogger } from '../coordinator/src/log.ts'
import type { Presence } from '../coordinator/src/p2p/presence.ts'
import { changeRunStatus, createRun } from '../coordinator/src/runs/runs.ts'
import { ReportIntake } from '../coordinator/src/rounds/report-intake.ts'
import { RoundEngine } from '../coordinator/src/rounds/round-engine.ts'
import { RunCache } from '../coordinator/src/rounds/run-cache.ts'
import { RunLocks } from '../coordinator/src/rounds/run-lock.ts'

const PARAMS = Number(process.env.BENCH_PARAMS ?? 40_000_000)
const NODES = Number(process.env.BENCH_NODES ?? 3)
const CODEC = (process.env.BENCH_CODEC ?? 'int8') as CodecName
const BROADCAST = process.env.BENCH_BROADCAST ?? 'dense'
const MOMENTUM = 0.9
/** The rounds closed; the last one's tick opens the next round. */
const CLOSES = [1, 2, 3]
if (!Number.isInteger(PARAMS) || PARAMS < 1_000_000 || !Number.isInteger(NODES) || NODES < 1 || !['int8', 'fp16', 'fp32', 'topk'].includes(CODEC) || !['dense', 'sparse'].includes(BROADCAST)) {
  process.stderr.write('BENCH_PARAMS must be a whole number of at least 1000000, BENCH_NODES at least 1, BENCH_CODEC one of int8, fp16, fp32, topk, BENCH_BROADCAST dense or sparse\n')
  process.exit(2)
}

const say = (line: string): void => { process.stdout.write(line + '\n') }
const MB = 1e6

/** This process's resident set now and its peak since the last reset, in bytes (Linux). */
function memory (): { rss: number, hwm: number } {
  const status = readFileSync('/proc/self/status', 'utf8')
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
}

/** Collects garbage (the child runs with --expose-gc), lets freed buffers go back, and restarts the peak from here. */
async function settleAndResetPeak (): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('the child must run with --expose-gc')
  for (let i = 0; i < 3; i++) { gc(); await sleep(50) }
  writeFileSync('/proc/self/clear_refs', '5')
  return memory().rss
}

/** A byte-level Llama of about `params` parameters (2.9M a layer at hidden 512). */
function modelOfSize (params: number): Record<string, number | boolean> {
  const shape = { vocab_size: 256, hidden_size: 512, intermediate_size: 1376, num_attention_heads: 8, num_key_value_heads: 4, max_position_embeddings: 64, tie_word_embeddings: false }
  const count = (layers: number): number => countParams(llamaConfigSchema.parse({ ...shape, num_hidden_layers: layers }))
  const perLayer = count(2) - count(1)
  return { ...shape, num_hidden_layers: Math.max(1, Math.round((params - count(1)) / perLayer) + 1) }
}

/**
 * Writes a node's report payload for `paramCount` values to `path`, encoded a slice at a time.
 * The parent makes them and the measured child reads each whole, as the report service hands
 * the intake a payload: the child's memory holds no bench garbage (16 MiB slices freed in bulk
 * stay in malloc's arenas, which read as the coordinator's own).
 */
async function writePayload (path: string, codec: CodecName, paramCount: number, seed: number): Promise<void> {
  const file = await open(path, 'w')
  try {
    // topk's chunks are not cut at slices here: one whole delta.
    const slice = codec === 'topk' ? paramCount : 4 * 1024 * 1024
    for (let a = 0; a < paramCount; a += slice) {
      const part = encodePseudoGradient(codec, deltaSlice(a, Math.min(paramCount, a + slice), seed))
      for (let at = 0; at < part.byteLength;) at += (await file.write(part, at, part.byteLength - at)).bytesWritten
    }
  } finally {
    await file.close()
  }
}

/** Where the payload of node `i` in round `round` is written. */
const payloadPath = (dir: string, round: number, i: number): string => join(dir, `report-${round}-${i}.bin`)

/** Values `a` to `b` of a small pseudo-random delta along `seed`'s direction. */
function deltaSlice (a: number, b: number, seed: number): Float32Array {
  const out = new Float32Array(b - a)
  for (let i = a; i < b; i++) out[i - a] = 1e-4 * Math.sin(i * 0.7 + seed * 1.3)
  return out
}

type BenchNode = { id: string, peerId: string, key: Awaited<ReturnType<typeof loadOrCreatePeerKey>>['key'] }

/**
 * Signs and sends a report as the report service does: admission, then the payload settled. Its
 * own function, so the payload is let go when it returns (an async function's frame can keep a
 * loop's last values until it ends).
 */
async function sendReport (intake: ReportIntake, node: BenchNode, unit: { runId: string, round: number, assignmentId: string }, payload: Uint8Array): Promise<void> {
  const metadata: ReportMetadata = {
    ...unit, peerId: node.peerId, tokens: 128, computeSeconds: 0, lossCurve: [5],
    codec: CODEC, payloadBytes: payload.byteLength, payloadSha256: createHash('sha256').update(payload).digest('hex'), executor: 'typescript'
  }
  const header: ReportHeader = { type: 'report', metadata, signature: Buffer.from(await node.key.sign(canonicalReportMetadata(metadata))).toString('base64') }
  const admitted = await intake.admit(node.peerId, header)
  if (!admitted.ok) throw new Error(`report refused at admission: ${admitted.message}`)
  const settled = await intake.settle(node.peerId, header, payload)
  if (!settled.ok) throw new Error(`report refused: ${settled.message}`)
}

interface CloseFigures { round: number, opensNext: boolean, heldBefore: number, arrayBuffersBefore: number, peak: number, heldAfter: number, arrayBuffersPeak: number, seconds: number, open?: { heldBefore: number, peak: number } }
interface ChildResult { fixed: number, closes: CloseFigures[], checkpoints: string[] }

/** The run's spec: a model of about PARAMS parameters, a fixed seed (the same checkpoints run after run: their hashes are printed). */
function runSpec (): Record<string, unknown> {
  return {
    name: 'round memory',
    model: { config: modelOfSize(PARAMS) },
    dataset: { source: 'demo-corpus' },
    recipe: { innerSteps: 8, batchSize: 4, seqLen: 32, innerLr: 0.003, warmupSteps: 2, outerMomentum: MOMENTUM },
    codec: CODEC,
    ...(BROADCAST === 'sparse' ? { broadcast: 'sparse' } : {}),
    // Round 3's close opens round 4.
    rounds: 4,
    seed: 1,
    minNodes: 1,
    maxNodes: NODES,
    roundDeadlineSeconds: 3600,
    evalBatches: 1
  }
}

/**
 * The measured child: the round loop, on the database and blob store in `dir` where the parent
 * created run `runId`, closing two rounds; its reports' payloads are read from `dir`. The run is
 * made by the parent: the initial checkpoint's worker thread leaves malloc arenas behind (about
 * 0.9× a 250M model, freed but kept), which would read as the round loop's own.
 */
async function closeChild (dir: string, databaseUrl: string, runId: string): Promise<ChildResult> {
  process.env.BARNRAISE_LOG ??= 'silent'
  const database = await openDatabase({ dataDir: dir, databaseUrl })
  const { db } = database
  const blobs = new DiskBlobStore(join(dir, 'blobs'))
  const log = createLogger('round-memory-bench')
  try {
    const live = new Set<string>()
    const presence = { isLive: (p: string) => live.has(p), executorOf: () => undefined, askedForWork: () => {}, onlineCount: () => live.size } as unknown as Presence
    const nodes: BenchNode[] = []
    for (let i = 0; i < NODES; i++) {
      const org = (await db.insertInto('organizations').values({ name: `Lab ${i}` }).returning('id').executeTakeFirstOrThrow()).id
      const { key } = await loadOrCreatePeerKey(join(dir, 'keys', `node-${i}.key`))
      // An Ed25519 key's string form is its peer id.
      const peerId = key.publicKey.toString()
      const hardware = { hostname: `h${i}`, platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 1, memoryBytes: 1e9, gpus: [] }
      const id = (await db.insertInto('nodes').values({ peer_id: peerId, organization_id: org, name: `n${i}`, hardware: JSON.stringify(hardware), agent_version: 'bench', first_seen_at: new Date(Date.now() + i), last_seen_at: new Date() })
        .returning('id').executeTakeFirstOrThrow()).id
      nodes.push({ id, peerId, key })
    }
    // What the torch evaluator does with a checkpoint in the coordinator's process: streams it to its child.
    const streamAway: CheckpointEvaluator = {
      kind: 'torch',
      name: 'bench: the checkpoint streamed and dropped',
      measure: async (_job, checkpoint) => { for await (const chunk of checkpoint.stream()) void chunk; return null }
    }
    const evaluation = new BackgroundEvaluation({ db, blobs, log, evaluator: streamAway, torchMinFlops: 0 })
    const cache = new RunCache({ db, blobs, log, evaluation, inlineEvalFlops: 0 })
    const locks = new RunLocks()
    const pins = new BlobPins()
    const changes = new ChangeFeed()
    const intake = new ReportIntake({ db, blobs, pins, cache, locks, changes, log, normBoundRatio: 1, onAccepted: () => {} })
    const engine = new RoundEngine({ db, blobs, pins, presence, changes, log, cache, locks, intake })
    // The next round's opening on its own: its peak from where the close left off, with no
    // collection forced (whether the spent sum is still held is the point).
    let opening: { closePeak: number, heldBefore: number } | undefined
    const openRound = cache.openRound.bind(cache)
    cache.openRound = async (...args) => {
      const closePeak = memory().hwm
      writeFileSync('/proc/self/clear_refs', '5')
      opening = { closePeak, heldBefore: memory().rss }
      await openRound(...args)
    }
    const fixed = await settleAndResetPeak()
    const closes: CloseFigures[] = []
    for (const round of CLOSES) {
      const opensNext = round === CLOSES.at(-1)
      for (const n of nodes) live.add(n.peerId)
      await engine.tick()
      const units = await db.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id')
        .select(['assignments.id', 'assignments.node_id']).where('assignments.run_id', '=', runId).where('rounds.number', '=', round)
        .where('assignments.status', '=', 'assigned').execute()
      if (units.length !== NODES) throw new Error(`round ${round} opened ${units.length} units, not ${NODES}`)
      for (const [i, n] of nodes.entries()) await sendReport(intake, n, { runId, round, assignmentId: units.find((u) => u.node_id === n.id)!.id }, await readWholeFile(payloadPath(dir, round, i)))
      // Nobody live: the tick closes this round and opens no next one, so the peak is the close's.
      // The last close's nodes stay: its tick opens the next round too.
      if (!opensNext) live.clear()
      let arrayBuffersPeak = 0
      const sampler = setInterval(() => { arrayBuffersPeak = Math.max(arrayBuffersPeak, process.memoryUsage().arrayBuffers) }, 2)
      const heldBefore = await settleAndResetPeak()
      opening = undefined
      const arrayBuffersBefore = process.memoryUsage().arrayBuffers
      const started = performance.now()
      await engine.tick()
      const seconds = (performance.now() - started) / 1000
      // The next round's sum is mapped in after the tick (RoundAccumulator.prefault, a slice a turn).
      if (opensNext) await sleep(2000)
      clearInterval(sampler)
      const { rss: heldAfter, hwm } = memory()
      // The close's peak was read as the opening began (and reset the peak): the tick's is the larger of the two.
      const opened = opening as { closePeak: number, heldBefore: number } | undefined
      const peak = opened === undefined ? hwm : Math.max(hwm, opened.closePeak)
      const closed = await db.selectFrom('rounds').select('status').where('run_id', '=', runId).where('number', '=', round).executeTakeFirstOrThrow()
      if (closed.status !== 'closed') throw new Error(`round ${round} did not close (${closed.status})`)
      const next = await db.selectFrom('rounds').select('status').where('run_id', '=', runId).where('number', '=', round + 1).executeTakeFirst()
      if ((next?.status === 'open') !== opensNext) throw new Error(`round ${round + 1} is ${next?.status ?? 'not opened'} after round ${round} closed`)
      closes.push({ round, opensNext, heldBefore, arrayBuffersBefore, peak, heldAfter, arrayBuffersPeak, seconds, ...(opened === undefined ? {} : { open: { heldBefore: opened.heldBefore, peak: hwm } }) })
    }
    await evaluation.idle()
    await evaluation.stop()
    const checkpoints = (await db.selectFrom('checkpoints').select('sha256').where('run_id', '=', runId).orderBy('round').execute()).map((c) => c.sha256)
    await changeRunStatus(db, runId, 'stop')
    return { fixed, closes, checkpoints }
  } finally {
    await database.close()
  }
}

/** The yardstick child: the peak of filling one model-sized Float32Array, over the model's bytes. */
async function yardstickChild (): Promise<{ ratio: number }> {
  const n = countParams(llamaConfigSchema.parse(modelOfSize(PARAMS)))
  const fixed = await settleAndResetPeak()
  const values = new Float32Array(n).fill(1)
  const peak = memory().hwm
  if (values[n - 1] !== 1) throw new Error('unreachable')
  return { ratio: (peak - fixed) / (4 * n) }
}

/** Runs this file again as a child (its mode, then its arguments), returning what it printed last as JSON. */
function child<T> (...args: string[]): T {
  const file = fileURLToPath(import.meta.url)
  const result = spawnSync(process.execPath, ['--expose-gc', '--disable-warning=ExperimentalWarning', file, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 * MB })
  if (result.status !== 0) throw new Error(`the ${args[0]!} child failed (exit ${result.status ?? result.signal}): ${result.stdout}`)
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as T
}

const mode = process.argv[2]
if (mode === '--close') say(JSON.stringify(await closeChild(process.argv[3]!, process.argv[4]!, process.argv[5]!)))
else if (mode === '--yardstick') say(JSON.stringify(await yardstickChild()))
else {
  const yard = child<{ ratio: number }>('--yardstick')
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-round-memory-'))
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined
  let r: ChildResult
  let paramCount: number
  let layers: number
  try {
    database = await createTestDatabase()
    const opened = await openDatabase({ dataDir: dir, databaseUrl: database.url })
    try {
      const { id, spec } = await createRun({ db: opened.db, blobs: new DiskBlobStore(join(dir, 'blobs')) }, runSpec())
      await changeRunStatus(opened.db, id, 'start')
      paramCount = spec.paramCount
      layers = spec.modelConfig.num_hidden_layers
      for (const round of CLOSES) for (let i = 0; i < NODES; i++) await writePayload(payloadPath(dir, round, i), CODEC, paramCount, 10 * round + i)
      r = child<ChildResult>('--close', dir, database.url, id)
    } finally {
      await opened.close()
    }
  } finally {
    await database?.drop()
    await rm(dir, { recursive: true, force: true })
  }
  const modelBytes = 4 * paramCount
  const x = (bytes: number): string => `${(bytes / modelBytes).toFixed(2)}×`
  say(`round-memory: a ${layers}-layer model of ${(paramCount / 1e6).toFixed(1)}M parameters (${(modelBytes / MB).toFixed(0)} MB fp32), ${NODES} ${CODEC} reports a round, ${BROADCAST} broadcast, momentum ${MOMENTUM}`)
  say(`yardstick: one fp32 model filled peaks at ${yard.ratio.toFixed(2)}× the model; the child's own resident set before any model: ${(r.fixed / MB).toFixed(0)} MB`)
  // Array buffers leave out WebAssembly memory, where the round's sum lives.
  say('round         held before the close   close peak   the close adds   held after (no GC)   array buffers before → peak (sampled)   close time')
  for (const c of r.closes) {
    const label = c.opensNext ? `${c.round}, opens ${c.round + 1}` : String(c.round)
    say(`${label.padEnd(13)} ${x(c.heldBefore - r.fixed).padStart(8)}               ${x(c.peak - r.fixed).padStart(8)}     ${x(c.peak - c.heldBefore).padStart(8)}         ${x(c.heldAfter - r.fixed).padStart(8)}             ${x(c.arrayBuffersBefore).padStart(6)} → ${x(c.arrayBuffersPeak).padEnd(6)}                      ${c.seconds.toFixed(2)} s`)
  }
  say(`checkpoints: ${r.checkpoints.map((s) => s.slice(0, 12)).join(' ')}`)
  // Every tick's, the one that opens the next round too.
  const worst = Math.max(...r.closes.map((c) => c.peak - r.fixed))
  const opening = r.closes.find((c) => c.opensNext)!
  if (opening.open === undefined) throw new Error('the next round opened without RunCache.openRound')
  say(`a close that opens the next round in its tick peaks at ${x(opening.peak - r.fixed)}; the opening alone: held as it began ${x(opening.open.heldBefore - r.fixed)}, its peak ${x(opening.open.peak - r.fixed)} (no collection forced); held 2 s after the tick: ${x(opening.heldAfter - r.fixed)}`)
  const oneB = 4 * countParams(presetConfig('1b'))
  say(`round-memory: close peaks at ${x(worst)} the model (${(paramCount / 1e6).toFixed(0)}M parameters, ${NODES} ${CODEC} reports, ${BROADCAST} broadcast, momentum ${MOMENTUM}); for the 1b preset (${(oneB / 1e9).toFixed(2)} GB fp32) about ${((worst / modelBytes) * oneB / 1e9 + r.fixed / 1e9).toFixed(1)} GB`)
}

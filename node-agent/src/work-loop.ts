import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { canonicalReportMetadata, encodePseudoGradient, sampleLossCurve, toPlainText } from '@barnraise/protocol'
import { ShardError, countParams, decodeShard, paramSetFromSafetensors, readMomentum, sha256Hex } from '@barnraise/trainer'
import type { ReportMetadata, ScoreResult, TokenRange, UnitDecline, WorkUnit } from '@barnraise/protocol'
import type { CoordinatorClient } from './coordinator-client.ts'
import { isRetryable } from './coordinator-client.ts'
import type { BlobCache } from './blob-cache.ts'
import type { Executor } from './executors/executor.ts'
import { ExecutorError, UNIT_REFUSAL_CODES } from './executors/executor-error.ts'
import { createBatchSource } from './batch-source.ts'
import { BlobSizeError, ShardUnavailableError } from './blob-cache.ts'
import { momentumMaxBytes, storedCheckpointByteLength } from './blob-sizes.ts'
import type { WorkMetrics } from './metrics/agent-metrics.ts'
import { scoreReport } from './scoring-task.ts'
import { ProgressBar } from './progress-bar.ts'
import { backoffDelay, sleep } from './backoff.ts'
import { addResidual, clearResidual, hasResidual, readResidual, residualAfter, usesErrorFeedback, writeResidual } from './error-feedback.ts'
import { momentumFor, rebuildBase, recordMomentum } from './base-rebuild.ts'
import { startLookAhead } from './look-ahead.ts'
import { makeInitialBase } from './initial-base.ts'

export type AgentStatus = 'idle' | 'training' | 'uploading' | 'downloading'

export interface WorkLoopOptions {
  client: CoordinatorClient
  cache: BlobCache
  executor: Executor
  key: PrivateKey
  peerId: string
  dataDir: string
  signal: AbortSignal
  say: (line: string) => void
  setStatus: (status: AgentStatus) => void
  /** Progress and waiting lines too; otherwise one line per round (a terminal still shows a live bar). */
  verbose?: boolean
  /** Told what the loop did, for --metrics-port. */
  metrics?: WorkMetrics
  /** --max-memory: the most host memory scoring another node's report may plan to use (below its share of the machine); the GPU's cap is the executor's. */
  maxMemoryBytes?: number
  /**
   * What the loop keeps between units (workState()): the session passes the same one to each
   * call, so a reconnect does not forget which blobs the last unit and its look ahead hold.
   */
  state?: WorkState
}

/**
 * The longest a `wait` reply makes the agent sleep (the coordinator asks for at most 10 s): the
 * number is the coordinator's, and past 2^31 ms a timer fires at once, so a huge one made a
 * tight polling loop.
 */
export const MAX_WAIT_MS = 60_000

/**
 * Asks for work, trains it, reports it, and asks again. Network failures propagate (the
 * session reconnects and calls this again); everything fetched stays in the blob cache.
 */
export async function runWorkLoop (o: WorkLoopOptions): Promise<void> {
  let waitingSaid = ''
  let executorSaid = false
  // Units this executor refused. The next request hands the unit back with the reason (the
  // organizer sees it in the ledger); should the coordinator still offer it, the node waits for
  // the next one instead of failing the same way again.
  const declined = new Set<string>()
  let decline: UnitDecline | undefined
  let scored: ScoreResult | undefined
  const state = o.state ?? workState()
  const { bases } = state
  // An overlapped unit's report still uploading while the next unit trains (one at a time).
  let uploading: Upload | undefined
  while (!o.signal.aborted) {
    // While a report uploads its unit is still this node's: ask for the one after it. A decline
    // or a score travels on a plain request, so those wait for the upload.
    if (uploading !== undefined && (decline !== undefined || scored !== undefined)) { await uploading.done; uploading = undefined }
    const reply = await o.client.requestWork(decline, scored, uploading?.assignmentId)
    decline = undefined
    scored = undefined
    if (reply.kind === 'wait' && uploading !== undefined) {
      await uploading.done
      uploading = undefined
      continue
    }
    if (reply.kind === 'wait') {
      if (waitingSaid !== reply.reason) { o.say(`agent: waiting for work (${reply.reason})`); waitingSaid = reply.reason }
      if (!await sleep(Math.min(reply.retryAfterMs, MAX_WAIT_MS), o.signal)) return
      continue
    }
    // Between rounds every node waits a little; say so again only when asked for detail.
    if (o.verbose === true) waitingSaid = ''
    if (reply.kind === 'score') {
      const task = reply.task
      o.setStatus('training')
      // A torch executor scores in its child (its files in a folder of their own); any other on a worker thread.
      const result = await scoreReport(o.cache, task, o.signal, { executor: o.executor, dir: join(o.dataDir, 'runs', task.runId, 'scoring'), ...(o.maxMemoryBytes !== undefined ? { maxMemoryBytes: o.maxMemoryBytes } : {}) })
      // Nothing of a scoring task is needed again: the windows and the report go (another
      // node's report is the coordinator's to hand out, not this disk's), the base unless it is
      // one a unit of this node trains from.
      for (const sha of [task.windows, task.report]) await o.cache.drop(sha)
      if (![...bases.values()].includes(task.baseCheckpoint)) await o.cache.drop(task.baseCheckpoint)
      o.setStatus('idle')
      if ('malformed' in result) {
        o.say(`agent: ${task.runName} round ${task.round}: could not score a report (${result.malformed})`)
        scored = { taskId: task.taskId, base: null, after: null, reversed: null }
      } else {
        scored = result
        o.metrics?.scored()
        const fmt = (x: number | null): string => x === null ? 'diverged' : x.toFixed(4)
        o.say(`agent: ${task.runName} round ${task.round}: scored another node's report: held-out loss ${fmt(result.base)} → ${fmt(result.after)} (reversed ${fmt(result.reversed)})`)
      }
      continue
    }
    const unit = reply.unit
    if (declined.has(unit.assignmentId)) {
      if (!await sleep(DECLINED_RETRY_MS, o.signal)) return
      continue
    }
    try {
      const refusal = vocabularyRefusal(unit) ?? await o.executor.check?.(unit, o.signal)
      if (refusal !== undefined) throw refusal
      if (!executorSaid) { o.say(`agent: training with ${o.executor.name}`); executorSaid = true }
      uploading = await runUnit(o, unit, state, uploading)
    } catch (err) {
      const refusable = (err instanceof ExecutorError && UNIT_REFUSAL_CODES.has(err.code)) || err instanceof ShardUnavailableError || err instanceof BlobSizeError
      if (!refusable || o.signal.aborted) throw err
      declined.add(unit.assignmentId)
      decline = unitDecline(unit.assignmentId, err.code, err.message)
      o.metrics?.declined(err.code)
      o.setStatus('idle')
      o.say(`agent: ${unit.runName} round ${unit.round}: declined the work unit (${err.code}): ${err.message}`)
    }
  }
}

/**
 * The decline the coordinator is sent for an executor's error: the message is often not ours (a
 * Python exception, a child's last output, a shard URL's reply), and the coordinator refuses
 * control and bidirectional formatting characters in it (plain-text.ts), so they become spaces
 * here (line feeds and tabs stay) and an honest node's decline is never refused.
 */
export function unitDecline (assignmentId: string, code: string, message: string): UnitDecline {
  return { assignmentId, code: toPlainText(code.slice(0, 64)), message: toPlainText(message.slice(0, 2000), 'multi-line') }
}

/**
 * Refuses a unit whose tokens the model cannot embed: the unit says its shards use a larger
 * vocabulary than the model's (checked before any download), or a fetched shard does
 * (`shardVocabs`, each shard's own header; decodeShard has checked every token against it). The
 * child would refuse such a batch each time it is retried.
 */
export function vocabularyRefusal (unit: WorkUnit, shardVocabs?: Map<string, number>): ExecutorError | undefined {
  const vocab = unit.modelConfig.vocab_size
  const mismatch = (what: string, size: number): ExecutorError =>
    new ExecutorError('ERR_BAD_INPUT', `${what} tokenized with a vocabulary of ${size}, but the model embeds ${vocab} token ids; the run's dataset and model do not match`)
  if (unit.shardVocabSize > vocab) return mismatch('the unit\'s shards are', unit.shardVocabSize)
  for (const [shard, size] of shardVocabs ?? []) {
    if (size > vocab) return mismatch(`shard ${shard.slice(0, 12)} is`, size)
  }
  return undefined
}

/** How often a node that declined its unit asks whether a new one is there. */
const DECLINED_RETRY_MS = 5_000

/** Where a unit's base came from, when not from the cache or a download: the log line says so. */
type BaseSource =
  | { kind: 'initial', seed: number }
  | { kind: 'rebuilt', reports: number, reportBytes: number }

/**
 * The unit's base: from the cache, made from the run's seed when it is the untrained model
 * (initial-base.ts), rebuilt from the previous round's reports when the run broadcasts its
 * updates and this node can (base-rebuild.ts), or downloaded. A node that downloads it also
 * learns the momentum that goes with it, once, to follow the next updates.
 */
async function baseCheckpoint (o: WorkLoopOptions, unit: WorkUnit, label: string): Promise<{ bytes: Uint8Array, source: BaseSource | null }> {
  const runDir = join(o.dataDir, 'runs', unit.runId)
  let source: BaseSource | null = null
  let made: Uint8Array | undefined
  if (unit.initialSeed !== undefined && !await o.cache.has(unit.baseCheckpoint)) {
    const outcome = await makeInitialBase(unit.modelConfig, unit.initialSeed, unit.baseCheckpoint, o.signal).catch((err: unknown) => {
      if (o.signal.aborted) throw err
      return { made: false as const, reason: `the model could not be made from the run's seed (${(err as Error).message})` }
    })
    // Into the cache, then on as if it had been downloaded: the momentum below still goes with it.
    if (outcome.made) {
      await o.cache.put(unit.baseCheckpoint, outcome.bytes)
      made = outcome.bytes
      source = { kind: 'initial', seed: unit.initialSeed }
    } else o.say(`agent: ${unit.runName} ${label}: downloading the base: ${outcome.reason}`)
  }
  if (made === undefined && unit.update !== undefined && !await o.cache.has(unit.baseCheckpoint)) {
    try {
      const outcome = await rebuildBase(o.cache, runDir, unit, o.signal)
      if (outcome.rebuilt) return { bytes: outcome.bytes, source: { kind: 'rebuilt', reports: outcome.reports, reportBytes: outcome.reportBytes } }
      if (o.verbose === true) o.say(`agent: ${unit.runName} ${label}: downloading the base: ${outcome.reason}`)
    } catch (err) {
      if (o.signal.aborted) throw err
      o.say(`agent: ${unit.runName} ${label}: could not rebuild the base from the round's reports (${(err as Error).message}); downloading it`)
    }
  }
  // The model just made is in hand: reading it back from the cache would cost a model's I/O.
  // Held to its model's size before a byte comes: the unit's word on the model is checked
  // against the bytes only once they are read whole.
  const bytes = made ?? await o.cache.get(unit.baseCheckpoint, o.signal, undefined, { bytes: storedCheckpointByteLength(unit.modelConfig), what: 'the unit\'s base checkpoint' })
  if (unit.momentum !== undefined && await momentumFor(runDir, unit.baseCheckpoint, countParams(unit.modelConfig)) === undefined) {
    try {
      const n = countParams(unit.modelConfig)
      const momentum = unit.momentum === null ? null : readMomentum(await o.cache.get(unit.momentum, o.signal, undefined, { maxBytes: momentumMaxBytes(n), what: 'the run\'s outer momentum' }), n)
      await recordMomentum(runDir, unit.baseCheckpoint, momentum)
      if (unit.momentum !== null) await o.cache.drop(unit.momentum)
    } catch (err) {
      if (o.signal.aborted) throw err
      // Not fatal: this node downloads each base until it learns a momentum.
      o.say(`agent: ${unit.runName} ${label}: could not fetch the run's outer momentum (${(err as Error).message}); bases will be downloaded`)
    }
  }
  return { bytes, source }
}

/** The log line's word on where the base came from, when it was not downloaded or cached. */
function baseSaid (unit: WorkUnit, source: BaseSource | null, modelBytes: number): string {
  const model = `${(modelBytes / 1024).toFixed(0)} KiB model`
  if (source === null) return ''
  if (source.kind === 'initial') return `; base made from the run's seed (${source.seed}) instead of downloading a ${model}`
  const from = source.reports === 0 ? `the round's ${unit.update?.aggregate?.codec ?? ''} mean` : `${source.reports} report${source.reports === 1 ? '' : 's'}`
  return `; base rebuilt from ${from} (${(source.reportBytes / 1024).toFixed(0)} KiB instead of a ${model})`
}

/** A report on its way while the node trains on; `done` settles with the upload (its failure included). */
interface Upload { assignmentId: string, done: Promise<void> }

/** What the work loop keeps between units: each run's last base and shards, what a look ahead fetched and the bases it prepared. */
export interface WorkState {
  /** Each run's base of the last unit: replaced by the next one, so it leaves the cache then. */
  bases: Map<string, string>
  /** Per run, the shards the last unit read (dropped once a unit no longer needs them). */
  shardsHeld: Map<string, Set<string>>
  /** Bases a look ahead made or rebuilt for the next unit, by sha256: that unit's line says so. */
  prepared: Map<string, BaseSource>
  /** The blobs of the unit the last look ahead fetched for: kept through the next unit's start, even if another unit comes first. */
  ahead: Set<string>
}

/** A work loop's state before its first unit. */
export function workState (): WorkState {
  return { bases: new Map(), shardsHeld: new Map(), prepared: new Map(), ahead: new Set() }
}

/**
 * Fetches, trains and reports one unit. An overlapped unit's report uploads while the next unit
 * trains: it is returned instead of awaited. `pending` is such an upload, still under way.
 */
async function runUnit (o: WorkLoopOptions, unit: WorkUnit, held: WorkState, pending: Upload | undefined): Promise<Upload | undefined> {
  const { bases, shardsHeld, prepared } = held
  const label = `round ${unit.round}`
  if (o.verbose === true) o.say(`agent: ${unit.runName} ${label}: training ${unit.recipe.innerSteps} steps on ${unit.ranges.length} token range(s) with ${o.executor.name}`)
  o.setStatus('downloading')
  // What nothing here will read again leaves the disk before this unit's downloads need room: a
  // process before this one's last base and shards (4.4 GB for a 1B model), a look ahead's
  // inputs for a unit that never ran, a scoring task's blobs or partial files a stop left. Kept:
  // this unit's inputs (partial downloads of them too, to resume), each run's last base and
  // shards, which the code below replaces, and the last look ahead's fetch (a unit handed out
  // again after a reconnect comes before the one it fetched for), until the next unit starts.
  const dropped = await o.cache.sweep(new Set([...unitBlobs(unit), ...bases.values(), ...[...shardsHeld.values()].flatMap((s) => [...s]), ...held.ahead]))
  held.ahead.clear()
  if (dropped.length > 0 && o.verbose === true) o.say(`agent: ${unit.runName} ${label}: dropped ${dropped.length} blob(s) no unit uses from the cache`)
  const { bytes: checkpoint, source: found } = await baseCheckpoint(o, unit, label)
  // Made or rebuilt while the unit before trained (a look ahead): this unit's line says so.
  const source = found ?? prepared.get(unit.baseCheckpoint) ?? null
  prepared.delete(unit.baseCheckpoint)
  // A node needs only its newest base (the next round's update starts from it): a donor's disk
  // would otherwise hold every checkpoint of a long run.
  const previous = bases.get(unit.runId)
  if (previous !== undefined && previous !== unit.baseCheckpoint) await o.cache.drop(previous)
  bases.set(unit.runId, unit.baseCheckpoint)
  let base: Float32Array
  try {
    base = paramSetFromSafetensors(unit.modelConfig, checkpoint).flat
  } catch (err) {
    // Bytes that hash right but are not this model's weights: the unit is declined with why,
    // not retried for ever (the coordinator would hand the same unit again).
    throw new ExecutorError('ERR_BAD_INPUT', `the unit's base checkpoint does not hold this model's weights: ${(err as Error).message}`)
  }
  // The previous unit's shards this one does not use: consecutive units mostly read on in the
  // same shard, and a donor's disk would otherwise keep every shard a long run named.
  const reading = new Set(usedRanges(unit).map((r) => r.shard))
  for (const sha of shardsHeld.get(unit.runId) ?? []) if (!reading.has(sha)) await o.cache.drop(sha)
  shardsHeld.set(unit.runId, reading)
  const { ranges, tokens: shardTokens, vocabs: shardVocabs } = await unitTokens(o, unit)
  const outside = vocabularyRefusal(unit, shardVocabs)
  if (outside !== undefined) throw outside
  const batches = createBatchSource(ranges, shardTokens, unit.recipe.batchSize, unit.recipe.seqLen)
  // Overlapped rounds: the next unit's base and shards arrive while this one trains, once the
  // next unit passed the checks that need nothing but the unit (one this machine cannot train
  // fetches nothing; the executor's full check waits until it is free, as it may be training).
  const ahead = unit.overlap === undefined
    ? undefined
    : startLookAhead(o, unit, async (next) => {
      const refusal = vocabularyRefusal(next) ?? o.executor.precheck?.(next)
      if (refusal !== undefined) return
      for (const sha of unitBlobs(next)) held.ahead.add(sha)
      const { source: made } = await baseCheckpoint(o, next, `round ${next.round}`)
      // Only the next unit's: one that never ran (declined, expired) is forgotten here.
      prepared.clear()
      if (made !== null) prepared.set(next.baseCheckpoint, made)
      for (const r of usedRanges(next)) await o.cache.get(r.shard, o.signal, r.url)
    })
  let upload: Upload | undefined
  try {
    upload = await trainAndReport(o, unit, label, base, batches, checkpoint, source, pending)
  } finally {
    await ahead?.stop()
  }
  o.setStatus('idle')
  return upload
}

/**
 * Every blob the unit reads: its base, what rebuilds the base (the previous one, the round's
 * reports or aggregate), its outer momentum, and the shards of the windows it trains on.
 */
export function unitBlobs (unit: WorkUnit): string[] {
  const u = unit.update
  const update = u === undefined ? [] : [u.from, ...(u.reports ?? []).map((r) => r.sha256), ...(u.aggregate === undefined ? [] : [u.aggregate.sha256])]
  return [unit.baseCheckpoint, ...update, ...(unit.momentum == null ? [] : [unit.momentum]), ...usedRanges(unit).map((r) => r.shard)]
}

/**
 * The start of the unit's ranges its training reads: windows are drawn in order, one per batch
 * row, `innerSteps × batchSize` in all, so ranges past those windows are never read (a unit
 * may name up to 1,024 ranges in shards of gigabytes). Each range cut to the windows used.
 */
export function usedRanges (unit: WorkUnit): TokenRange[] {
  const window = unit.recipe.seqLen + 1
  let needed = unit.recipe.innerSteps * unit.recipe.batchSize
  const used: TokenRange[] = []
  for (const r of unit.ranges) {
    if (needed <= 0) break
    const windows = Math.min(needed, Math.max(0, Math.floor((r.end - r.start) / window)))
    if (windows === 0) continue
    used.push({ ...r, end: r.start + windows * window })
    needed -= windows
  }
  return used
}

/**
 * The tokens the unit trains on, shard by shard but kept a range at a time: only the windows
 * used (usedRanges), copied out so each shard's bytes are let go once read. The same batches
 * as reading the whole shards (windows are drawn in order and never past those used).
 */
async function unitTokens (o: WorkLoopOptions, unit: WorkUnit): Promise<{ ranges: TokenRange[], tokens: Map<string, ArrayLike<number>>, vocabs: Map<string, number> }> {
  const used = usedRanges(unit)
  const tokens = new Map<string, ArrayLike<number>>()
  const vocabs = new Map<string, number>()
  const ranges: TokenRange[] = []
  for (const shardSha of new Set(used.map((r) => r.shard))) {
    const first = used.find((r) => r.shard === shardSha)!
    const shard = readShard(shardSha, await o.cache.get(shardSha, o.signal, first.url))
    vocabs.set(shardSha, shard.vocabSize)
    for (const [i, r] of used.entries()) {
      if (r.shard !== shardSha) continue
      // A manifest can claim more tokens than its shard holds.
      if (r.end > shard.tokens.length) throw new ShardUnavailableError(`shard ${r.shard.slice(0, 12)} holds ${shard.tokens.length} tokens, fewer than the unit's range ${r.start}-${r.end} needs`)
      const key = `${shardSha}:${i}`
      tokens.set(key, shard.tokens.slice(r.start, r.end))
      ranges[i] = { ...r, shard: key, start: 0, end: r.end - r.start }
    }
  }
  return { ranges, tokens, vocabs }
}

/**
 * A fetched shard's tokens. Its sha256 is checked, not its contents: a shard served by URL is the
 * organizer's word and no coordinator read it, so one that does not decode declines the unit with
 * why (ShardUnavailableError). Thrown as it was, it read as a network failure: the agent
 * reconnected and was handed the same unit again until its deadline, every unit naming the shard.
 */
function readShard (sha256: string, bytes: Uint8Array): ReturnType<typeof decodeShard> {
  try {
    return decodeShard(bytes)
  } catch (err) {
    if (!(err instanceof ShardError)) throw err
    throw new ShardUnavailableError(`shard ${sha256.slice(0, 12)} has the sha256 the run names but is not a token shard this agent reads (${err.code}: ${err.message})`)
  }
}

/**
 * Trains the unit from `base`, then encodes, signs and sends its report: awaited, or for an
 * overlapped unit returned as an Upload. `previous` must land first (its verdict decides the
 * error-feedback residual this report adds).
 */
async function trainAndReport (o: WorkLoopOptions, unit: WorkUnit, label: string, base: Float32Array, batches: ReturnType<typeof createBatchSource>, checkpoint: Uint8Array, source: BaseSource | null, previous: Upload | undefined): Promise<Upload | undefined> {
  o.setStatus('training')
  const bar = new ProgressBar(process.stderr, `agent: ${label}`, { verbose: o.verbose === true })
  let tokensPerSecond = 0
  // A fresh inner state lives in a folder of its own for this unit only (see innerRecipeSchema).
  const fresh = unit.recipe.freshInnerState === true ? join(o.dataDir, 'runs', unit.runId, 'fresh-state', unit.assignmentId) : null
  if (fresh !== null) await rm(fresh, { recursive: true, force: true })
  const result = await o.executor.train({
    unit,
    base,
    batches,
    stateDir: fresh ?? join(o.dataDir, 'runs', unit.runId),
    onProgress: (p) => { tokensPerSecond = p.tokensPerSecond; bar.update(p.step, p.steps, p.loss, p.tokensPerSecond) },
    signal: o.signal
  })
  if (fresh !== null) {
    // The torch child may still be writing this unit's optimizer state into the folder.
    await o.executor.flush?.(o.signal)
    await rm(fresh, { recursive: true, force: true })
  }
  o.metrics?.trained(result.executor, result.tokens, result.computeSeconds, tokensPerSecond > 0 ? tokensPerSecond : result.tokens / Math.max(result.computeSeconds, 1e-9))
  const delta = new Float32Array(base.length)
  for (let i = 0; i < delta.length; i++) delta[i] = base[i]! - result.params[i]!
  // A sparse codec sends part of Δ; what it dropped last time rides along this time.
  const runDir = join(o.dataDir, 'runs', unit.runId)
  await previous?.done
  // A residual left from sparse units rides along a dense one too, which then sends it whole.
  const feedback = usesErrorFeedback(unit.codec) || await hasResidual(runDir) ? await readResidual(runDir, delta.length) : null
  if (feedback?.note != null) o.say(`agent: ${unit.runName} ${label}: ${feedback.note}`)
  const decay = unit.errorFeedbackDecay ?? 1
  if (feedback != null) addResidual(delta, feedback.residual, decay)
  // Said on the round line where the run decays its residual: what a node carries is the run's choice.
  const carried = feedback != null && decay !== 1 ? `, ${decay} of the last residual carried` : ''
  const payload = encodePseudoGradient(unit.codec, delta)
  const metadata: ReportMetadata = {
    runId: unit.runId,
    round: unit.round,
    assignmentId: unit.assignmentId,
    peerId: o.peerId,
    tokens: result.tokens,
    computeSeconds: Math.round(result.computeSeconds * 1000) / 1000,
    lossCurve: sampleLossCurve(result.lossCurve).map((l) => Math.round(l * 1e5) / 1e5),
    codec: unit.codec,
    payloadBytes: payload.byteLength,
    payloadSha256: sha256Hex(payload),
    executor: result.executor,
    ...(result.devices !== undefined && result.devices > 1 ? { devices: result.devices } : {})
  }
  const signature = Buffer.from(await o.key.sign(canonicalReportMetadata(metadata))).toString('base64')
  const send = async (): Promise<void> => {
    o.setStatus('uploading')
    // A coordinator too busy to take the report now (ERR_BUSY: as many uploads in flight as it
    // holds, or this unit's previous upload still open there) is asked again until the unit's
    // deadline: the report is not refused, and dropping it would waste the unit's training.
    const parsed = Date.parse(unit.deadline)
    const busyUntil = Number.isFinite(parsed) ? parsed : Date.now() + 10 * 60_000
    let busy = 0
    let attempt = 0
    // Reports are idempotent per work unit, so resending after a network error is safe.
    for (;;) {
      try {
        const verdict = await o.client.sendReport({ type: 'report', metadata, signature }, payload, o.signal)
        if (!verdict.ok && verdict.code === 'ERR_BUSY' && Date.now() < busyUntil) {
          const delay = Math.min(backoffDelay(busy++, 60_000), Math.max(0, busyUntil - Date.now()))
          o.say(`agent: ${label} report not taken yet (${verdict.message}); sending it again in ${(delay / 1000).toFixed(1)} s`)
          if (!await sleep(delay, o.signal)) return
          continue
        }
        // Only what was folded was sent: a held report may still be refused (node scoring).
        if (feedback != null && verdict.ok && verdict.outcome === 'accepted') {
          if (usesErrorFeedback(unit.codec)) await writeResidual(runDir, residualAfter(delta, unit.codec, payload))
          else await clearResidual(runDir)
        }
        o.metrics?.verdict(verdict.ok ? verdict.outcome : 'refused', verdict.ok ? null : verdict.code)
        const first = metadata.lossCurve[0]?.toFixed(3) ?? '?'
        const loss = metadata.lossCurve.at(-1)?.toFixed(3) ?? '?'
        const trained = `${unit.recipe.innerSteps} steps, loss ${first} → ${loss}, ${metadata.tokens.toLocaleString('en-US')} tokens at ${Math.round(tokensPerSecond).toLocaleString('en-US')} tok/s`
        const base = baseSaid(unit, source, checkpoint.byteLength)
        if (verdict.ok) o.say(`agent: ${unit.runName} ${label}: ${trained}; report ${verdict.outcome === 'held' ? 'held until a second node\'s copy of this unit reports and the two are compared' : 'accepted'}${verdict.duplicate ? ' (already had it)' : ''} (${(payload.byteLength / 1024).toFixed(0)} KiB ${unit.codec}${carried})${base}`)
        else o.say(`agent: ${unit.runName} ${label}: ${trained}; report refused (${verdict.code}): ${verdict.message}`)
        break
      } catch (err) {
        if (!isRetryable(err) || attempt >= 4 || o.signal.aborted) throw err
        const delay = backoffDelay(attempt++)
        o.say(`agent: ${label} report upload failed (${(err as Error).message}); retrying in ${(delay / 1000).toFixed(1)} s`)
        await sleep(delay, o.signal)
      }
    }
  }
  if (unit.overlap === undefined) {
    await send()
    return undefined
  }
  const done = send()
  // Handled where it is awaited (before the next report or request); never an unhandled rejection meanwhile.
  done.catch(() => {})
  return { assignmentId: unit.assignmentId, done }
}

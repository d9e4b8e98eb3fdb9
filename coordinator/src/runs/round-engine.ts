import { createHash } from 'node:crypto'
import type { Kysely } from 'kysely'
import { PseudoGradientError, canonicalReportMetadata, verifyReportSignature } from '@barnraise/protocol'
import type { ReportHeader, ReportResponse, TokenRange, WorkResponse } from '@barnraise/protocol'
import type { Database, DataCursor } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import type { Logger } from '../log.ts'
import type { Presence } from '../p2p/presence.ts'
import type { ChangeFeed } from '../events/change-feed.ts'
import type { WorkSource } from '../p2p/work-service.ts'
import type { ReportSink } from '../p2p/report-service.ts'
import { appendLedgerEntry } from '../ledger/ledger.ts'
import { RoundAccumulator, l2Norm } from './accumulator.ts'
import { takeRanges, rangeTokens } from './data-cursor.ts'
import { RunLocks } from './run-lock.ts'
import { failRun } from './runs.ts'
import type { ResolvedRunSpec } from './runs.ts'
import type { ModelOps } from './model-ops.ts'

export interface RoundEngineOptions {
  db: Kysely<Database>
  blobs: BlobStore
  presence: Presence
  changes: ChangeFeed
  log: Logger
  ops: ModelOps
  /** How often the engine looks at running runs. */
  tickMs?: number
  /** A report whose ||Δ|| exceeds this multiple of ||θ|| is refused as implausible. */
  normBoundRatio?: number
}

type Refusal = { ok: false, code: string, message: string }

/** Rounds the inner learning-rate schedule spans: the run's rounds, or its token target at minNodes per round. */
function plannedRounds (spec: ResolvedRunSpec): number {
  if (spec.rounds !== undefined) return spec.rounds
  const perRound = Math.max(1, spec.minNodes) * spec.recipe.innerSteps * spec.recipe.batchSize * spec.recipe.seqLen
  return Math.max(1, Math.ceil((spec.tokenTarget ?? perRound) / perRound))
}

interface Loaded {
  spec: ResolvedRunSpec
  base?: { sha: string, flat: Float32Array }
  validation?: Uint8Array | Int32Array
  acc?: RoundAccumulator
}

/**
 * The DiLoCo round loop. Every transition is a row in Postgres (rounds, assignments, ledger,
 * checkpoints, the run's cursor), so a restarted coordinator picks up where it stopped: the
 * open round continues and its running sum is rebuilt from the accepted reports on disk.
 */
export class RoundEngine implements WorkSource, ReportSink {
  readonly #o: Required<RoundEngineOptions>
  readonly #locks = new RunLocks()
  readonly #loaded = new Map<string, Loaded>()
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | undefined
  #stopped = false

  constructor (options: RoundEngineOptions) {
    this.#o = { tickMs: 500, normBoundRatio: 1, ...options }
  }

  start (): void {
    this.#stopped = false
    const loop = (): void => {
      if (this.#stopped) return
      this.#ticking = this.tick().catch((err: unknown) => { this.#o.log.error('engine tick failed', { err }) })
        .finally(() => { if (!this.#stopped) this.#timer = setTimeout(loop, this.#o.tickMs) })
    }
    loop()
  }

  async stop (): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#ticking
  }

  /** Advances every running run by one step: open a round, or close one that is done. */
  async tick (): Promise<void> {
    const runs = await this.#o.db.selectFrom('runs').select('id').where('status', '=', 'running').execute()
    for (const { id } of runs) {
      if (this.#stopped) return
      try {
        await this.#locks.with(id, async () => { await this.#advance(id) })
      } catch (err) {
        this.#o.log.error('run failed', { runId: id, err })
        await failRun(this.#o.db, id, `coordinator error: ${(err as Error).message}`)
        this.#loaded.delete(id)
        this.#o.changes.publish('runs', id)
      }
    }
  }

  async #load (runId: string): Promise<Loaded> {
    let loaded = this.#loaded.get(runId)
    if (loaded === undefined) {
      const row = await this.#o.db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirstOrThrow()
      loaded = { spec: row.spec as ResolvedRunSpec }
      this.#loaded.set(runId, loaded)
    }
    return loaded
  }

  async #base (loaded: Loaded, sha: string): Promise<Float32Array> {
    if (loaded.base?.sha !== sha) {
      loaded.base = { sha, flat: this.#o.ops.readCheckpoint(loaded.spec.modelConfig, await this.#o.blobs.get(sha)) }
    }
    return loaded.base.flat
  }

  async #advance (runId: string): Promise<void> {
    const { db } = this.#o
    const run = await db.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow()
    if (run.status !== 'running') return
    const loaded = await this.#load(runId)
    const spec = loaded.spec
    if ((spec.rounds !== undefined && run.current_round >= spec.rounds) ||
      (spec.tokenTarget !== undefined && run.tokens_seen >= spec.tokenTarget)) {
      await db.updateTable('runs').set({ status: 'completed', updated_at: new Date() }).where('id', '=', runId).execute()
      this.#o.log.info('run completed', { runId, rounds: run.current_round, tokens: run.tokens_seen })
      this.#o.changes.publish('runs', runId)
      return
    }
    const round = await db.selectFrom('rounds').selectAll().where('run_id', '=', runId).where('status', '=', 'open').executeTakeFirst()
    if (round === undefined) {
      if (run.current_round === 0) await this.#evaluateInitial(runId, loaded, run.latest_checkpoint!)
      await this.#openRound(runId, run.current_round + 1, run.latest_checkpoint!, run.data_cursor, spec)
      return
    }
    const acc = await this.#accumulator(loaded, round.id)
    const counts = await db.selectFrom('assignments').select(['status']).select((eb) => eb.fn.countAll<number>().as('n'))
      .where('round_id', '=', round.id).groupBy('status').execute()
    const n = (s: string): number => Number(counts.find((c) => c.status === s)?.n ?? 0)
    if (n('assigned') === 0 && acc.reports > 0) {
      await this.#closeRound(runId, round.id, round.number, run.current_round, 'all work units reported')
    } else if (Date.now() >= round.deadline_at.getTime()) {
      if (acc.reports > 0) {
        await this.#closeRound(runId, round.id, round.number, run.current_round, `deadline: ${acc.reports} of ${acc.reports + n('assigned') + n('refused')} units reported`)
      } else {
        await db.transaction().execute(async (trx) => {
          await trx.updateTable('assignments').set({ status: 'expired', resolved_at: new Date() })
            .where('round_id', '=', round.id).where('status', '=', 'assigned').execute()
          await trx.updateTable('rounds').set({ status: 'abandoned', closed_at: new Date(), close_reason: 'no accepted report before the deadline' })
            .where('id', '=', round.id).execute()
        })
        loaded.acc = undefined
        this.#o.log.warn('round abandoned', { runId, round: round.number })
        this.#o.changes.publish('runs', runId)
      }
    }
  }

  /** Gives the initial checkpoint its validation loss, the curve's first point. */
  async #evaluateInitial (runId: string, loaded: Loaded, sha: string): Promise<void> {
    const row = await this.#o.db.selectFrom('checkpoints').select('val_loss').where('sha256', '=', sha).executeTakeFirst()
    if (row === undefined || row.val_loss !== null) return
    const { spec } = loaded
    const loss = this.#o.ops.evaluate(spec.modelConfig, await this.#base(loaded, sha), await this.#validation(loaded), { batches: spec.evalBatches, batchSize: spec.recipe.batchSize, seqLen: spec.recipe.seqLen })
    await this.#o.db.updateTable('checkpoints').set({ val_loss: Number.isFinite(loss) ? loss : null }).where('sha256', '=', sha).where('run_id', '=', runId).execute()
  }

  /** Online, enrolled, unrevoked nodes, oldest first (a stable order keeps assignments predictable). */
  async #eligibleNodes (): Promise<Array<{ id: string, peer_id: string }>> {
    const nodes = await this.#o.db.selectFrom('nodes').select(['id', 'peer_id']).where('revoked_at', 'is', null)
      .orderBy('first_seen_at').execute()
    return nodes.filter((n) => this.#o.presence.isOnline(n.peer_id))
  }

  async #openRound (runId: string, number: number, baseCheckpoint: string, cursor: DataCursor, spec: ResolvedRunSpec): Promise<void> {
    const nodes = (await this.#eligibleNodes()).slice(0, spec.maxNodes)
    if (nodes.length < spec.minNodes) return
    const { recipe } = spec
    const window = recipe.seqLen + 1
    const unitTokens = recipe.innerSteps * recipe.batchSize * window
    const deadline = new Date(Date.now() + spec.roundDeadlineSeconds * 1000)
    const opened = await this.#o.db.transaction().execute(async (trx) => {
      const round = await trx.insertInto('rounds').values({ run_id: runId, number, status: 'open', base_checkpoint: baseCheckpoint, deadline_at: deadline })
        .returning('id').executeTakeFirstOrThrow()
      // Work a vanished or refused node did not finish goes out again before fresh tokens.
      const pool = await trx.selectFrom('assignments').select(['id', 'ranges', 'tokens'])
        .where('run_id', '=', runId).where('status', 'in', ['expired', 'refused']).where('requeued', '=', false)
        .orderBy('created_at').execute()
      let next = cursor
      for (const node of nodes) {
        let ranges: TokenRange[]
        const requeued = pool.shift()
        if (requeued !== undefined) {
          ranges = requeued.ranges
          await trx.updateTable('assignments').set({ requeued: true }).where('id', '=', requeued.id).execute()
        } else {
          const taken = takeRanges(next, spec.trainShards, unitTokens, window)
          ranges = taken.ranges
          next = taken.cursor
        }
        await trx.insertInto('assignments').values({
          run_id: runId, round_id: round.id, node_id: node.id, ranges: JSON.stringify(ranges), tokens: rangeTokens(ranges), status: 'assigned'
        }).execute()
      }
      await trx.updateTable('runs').set({ data_cursor: JSON.stringify(next), updated_at: new Date() }).where('id', '=', runId).execute()
      return round
    })
    const loaded = await this.#load(runId)
    loaded.acc = new RoundAccumulator(opened.id, spec.paramCount)
    this.#o.log.info('round opened', { runId, round: number, nodes: nodes.length, deadline: deadline.toISOString() })
    this.#o.changes.publish('runs', runId)
  }

  /** The open round's running sum, rebuilt from accepted reports on disk after a restart. */
  async #accumulator (loaded: Loaded, roundId: string): Promise<RoundAccumulator> {
    if (loaded.acc?.roundId === roundId) return loaded.acc
    const acc = new RoundAccumulator(roundId, loaded.spec.paramCount)
    const accepted = await this.#o.db.selectFrom('assignments')
      .innerJoin('ledger', (j) => j.onRef('ledger.assignment_id', '=', 'assignments.id').on('ledger.outcome', '=', 'accepted'))
      .select(['assignments.report_blob', 'ledger.tokens', 'ledger.metadata'])
      .where('assignments.round_id', '=', roundId).where('assignments.status', '=', 'accepted').execute()
    for (const a of accepted) {
      const delta = this.#o.ops.decode(loaded.spec.codec, await this.#o.blobs.get(a.report_blob!), loaded.spec.paramCount)
      const curve = a.metadata === null ? [] : (JSON.parse(a.metadata) as unknown[])[7] as number[]
      acc.fold(delta, a.tokens, curve.at(-1))
    }
    loaded.acc = acc
    if (accepted.length > 0) this.#o.log.info('round sum rebuilt from disk', { roundId, reports: accepted.length })
    return acc
  }

  async #closeRound (runId: string, roundId: string, number: number, currentRound: number, reason: string): Promise<void> {
    const { db, blobs, ops } = this.#o
    const loaded = await this.#load(runId)
    const spec = loaded.spec
    const run = await db.selectFrom('runs').select(['latest_checkpoint', 'outer_state', 'tokens_seen']).where('id', '=', runId).executeTakeFirstOrThrow()
    const acc = await this.#accumulator(loaded, roundId)
    const theta = new Float32Array(await this.#base(loaded, run.latest_checkpoint!))
    const momentum = run.outer_state === null ? null : ops.readVector(await blobs.get(run.outer_state), spec.paramCount)
    const newMomentum = ops.outerStep(theta, acc.mean(), momentum, { lr: spec.recipe.outerLr, momentum: spec.recipe.outerMomentum })
    const checkpointBytes = ops.writeCheckpoint(spec.modelConfig, theta)
    const valLoss = ops.evaluate(spec.modelConfig, theta, await this.#validation(loaded), { batches: spec.evalBatches, batchSize: spec.recipe.batchSize, seqLen: spec.recipe.seqLen })
    const checkpoint = await storeBlob(db, blobs, checkpointBytes, 'checkpoint', { runId, round: number })
    const outerState = await storeBlob(db, blobs, ops.writeVector(newMomentum), 'optimizer', { runId, round: number })
    const tokensSeen = run.tokens_seen + acc.tokens
    const done = (spec.rounds !== undefined && currentRound + 1 >= spec.rounds) || (spec.tokenTarget !== undefined && tokensSeen >= spec.tokenTarget)
    const reportBlobs = await db.transaction().execute(async (trx) => {
      await trx.updateTable('assignments').set({ status: 'expired', resolved_at: new Date() })
        .where('round_id', '=', roundId).where('status', '=', 'assigned').execute()
      await trx.updateTable('rounds').set({
        status: 'closed', closed_at: new Date(), close_reason: reason, result_checkpoint: checkpoint,
        tokens: acc.tokens, train_loss: acc.trainLoss(), val_loss: Number.isFinite(valLoss) ? valLoss : null
      }).where('id', '=', roundId).execute()
      await trx.insertInto('checkpoints').values({ sha256: checkpoint, run_id: runId, round: number, tokens_seen: tokensSeen, val_loss: Number.isFinite(valLoss) ? valLoss : null })
        .onConflict((oc) => oc.column('sha256').doNothing()).execute()
      await trx.updateTable('runs').set({
        current_round: number, tokens_seen: tokensSeen, latest_checkpoint: checkpoint, outer_state: outerState,
        updated_at: new Date(), ...(done ? { status: 'completed' as const } : {})
      }).where('id', '=', runId).execute()
      return await trx.selectFrom('assignments').select('report_blob').where('round_id', '=', roundId).where('report_blob', 'is not', null).execute()
    })
    loaded.base = { sha: checkpoint, flat: theta }
    loaded.acc = undefined
    // The round is folded into the checkpoint; its reports are no longer needed to rebuild anything.
    for (const r of reportBlobs) {
      await blobs.delete(r.report_blob!)
      await db.deleteFrom('blobs').where('sha256', '=', r.report_blob!).where('kind', '=', 'report').execute()
    }
    this.#o.log.info('round closed', { runId, round: number, reports: acc.reports, tokens: acc.tokens, valLoss, reason, checkpoint })
    this.#o.changes.publish('runs', runId)
  }

  async #validation (loaded: Loaded): Promise<Uint8Array | Int32Array> {
    const tokens = loaded.validation ?? this.#o.ops.readShard(await this.#o.blobs.get(loaded.spec.validationShard.sha256))
    loaded.validation = tokens
    return tokens
  }

  /** Work for an idle node: its unit in the open round, or "wait". */
  async workFor (peerId: string): Promise<WorkResponse> {
    const { db } = this.#o
    const node = await db.selectFrom('nodes').select(['id', 'revoked_at']).where('peer_id', '=', peerId).executeTakeFirst()
    if (node === undefined) return { kind: 'refused', code: 'ERR_NOT_ENROLLED', message: 'enroll this node before asking for work' }
    if (node.revoked_at !== null) return { kind: 'refused', code: 'ERR_NODE_REVOKED', message: 'this node was revoked by its organization' }
    const unit = await db.selectFrom('assignments')
      .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .innerJoin('runs', 'runs.id', 'assignments.run_id')
      .select(['assignments.id', 'assignments.ranges', 'assignments.run_id', 'rounds.number', 'rounds.base_checkpoint', 'rounds.deadline_at', 'runs.name'])
      .where('assignments.node_id', '=', node.id).where('assignments.status', '=', 'assigned')
      .where('rounds.status', '=', 'open').where('runs.status', '=', 'running')
      .orderBy('assignments.created_at').executeTakeFirst()
    if (unit === undefined) return { kind: 'wait', retryAfterMs: 1000, reason: 'no work for this node now; it gets a unit when the next round opens' }
    const spec = (await this.#load(unit.run_id)).spec
    const { recipe } = spec
    return {
      kind: 'unit',
      unit: {
        assignmentId: unit.id,
        runId: unit.run_id,
        runName: unit.name,
        round: unit.number,
        baseCheckpoint: unit.base_checkpoint,
        modelConfig: spec.modelConfig,
        ranges: unit.ranges,
        shardVocabSize: spec.vocabSize,
        recipe: {
          innerSteps: recipe.innerSteps, batchSize: recipe.batchSize, seqLen: recipe.seqLen, lr: recipe.innerLr,
          warmupSteps: recipe.warmupSteps, weightDecay: recipe.weightDecay, beta1: recipe.beta1, beta2: recipe.beta2,
          gradClip: recipe.gradClip, seed: spec.seed
        },
        codec: spec.codec,
        deadline: unit.deadline_at.toISOString(),
        scheduleOffset: (unit.number - 1) * recipe.innerSteps,
        totalInnerSteps: plannedRounds(spec) * recipe.innerSteps
      }
    }
  }

  /** Records a refusal in the ledger (when the run exists) and returns it. */
  async #refuse (header: ReportHeader, peerId: string, code: string, message: string, assignmentId: string | null, markAssignment: boolean): Promise<Refusal> {
    const { db } = this.#o
    const m = header.metadata
    const run = await db.selectFrom('runs').select('id').where('id', '=', m.runId).executeTakeFirst()
    if (run !== undefined) {
      const node = await db.selectFrom('nodes').select(['id', 'organization_id']).where('peer_id', '=', peerId).executeTakeFirst()
      await db.transaction().execute(async (trx) => {
        if (markAssignment && assignmentId !== null) {
          await trx.updateTable('assignments').set({ status: 'refused', resolved_at: new Date() })
            .where('id', '=', assignmentId).where('status', '=', 'assigned').execute()
        }
        await appendLedgerEntry(trx, {
          runId: m.runId, round: m.round, nodeId: node?.id ?? null, peerId, organizationId: node?.organization_id ?? null,
          assignmentId, tokens: 0, computeSeconds: 0, outcome: 'refused', reason: `${code}: ${message}`, metadata: null, signature: null
        })
      })
      this.#o.changes.publish('ledger', m.runId)
    }
    this.#o.log.warn('report refused', { peerId, runId: m.runId, round: m.round, code, reason: message })
    return { ok: false, code, message }
  }

  /** Header checks: identity, signature, assignment, round, codec and size. */
  async admit (peerId: string, header: ReportHeader): Promise<{ ok: true, payloadBytes: number } | Refusal> {
    const { db } = this.#o
    const m = header.metadata
    if (m.peerId !== peerId) return await this.#refuse(header, peerId, 'ERR_BAD_SIGNATURE', 'the report names another peer than the one sending it', null, false)
    const metadataText = new TextDecoder().decode(canonicalReportMetadata(m))
    if (!await verifyReportSignature(peerId, metadataText, header.signature)) {
      return await this.#refuse(header, peerId, 'ERR_BAD_SIGNATURE', 'the signature over the report metadata does not verify', null, false)
    }
    const a = await db.selectFrom('assignments')
      .innerJoin('nodes', 'nodes.id', 'assignments.node_id')
      .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .select(['assignments.id', 'assignments.status', 'assignments.run_id', 'assignments.tokens', 'assignments.report_blob', 'nodes.peer_id', 'rounds.number', 'rounds.status as round_status'])
      .where('assignments.id', '=', m.assignmentId).executeTakeFirst()
    if (a === undefined || a.peer_id !== peerId || a.run_id !== m.runId || a.number !== m.round) {
      return await this.#refuse(header, peerId, 'ERR_UNASSIGNED', 'this node was not given that work unit in that round', null, false)
    }
    if (a.status === 'accepted') {
      // A retry of the accepted report while its round is open is answered "accepted" again
      // (the agent may have lost our reply); after the round closed it is a replay.
      if (a.report_blob === m.payloadSha256 && a.round_status === 'open') return { ok: true, payloadBytes: m.payloadBytes }
      if (a.report_blob === m.payloadSha256) return await this.#refuse(header, peerId, 'ERR_REPLAY', `this report was already accepted in round ${a.number}; it is not counted twice`, a.id, false)
      return await this.#refuse(header, peerId, 'ERR_DUPLICATE', 'a different report for this work unit was already accepted', a.id, false)
    }
    if (a.status === 'refused') return await this.#refuse(header, peerId, 'ERR_DUPLICATE', 'a report for this work unit was already refused', a.id, false)
    if (a.round_status !== 'open' || a.status === 'expired') {
      return await this.#refuse(header, peerId, 'ERR_STALE', `round ${a.number} closed before this report arrived`, a.id, false)
    }
    const spec = (await this.#load(a.run_id)).spec
    if (m.codec !== spec.codec) return await this.#refuse(header, peerId, 'ERR_WRONG_SHAPE', `the run uses codec ${spec.codec}, not ${m.codec}`, a.id, true)
    const expected = this.#o.ops.encodedByteLength(spec.codec, spec.paramCount)
    if (m.payloadBytes !== expected) {
      const what = m.payloadBytes > expected ? 'oversized payload' : 'payload too small'
      return await this.#refuse(header, peerId, 'ERR_WRONG_SHAPE', `${what}: ${m.payloadBytes} bytes announced, the model needs exactly ${expected}`, a.id, true)
    }
    const maxTokens = spec.recipe.innerSteps * spec.recipe.batchSize * spec.recipe.seqLen
    if (m.tokens > maxTokens || m.tokens <= 0) {
      return await this.#refuse(header, peerId, 'ERR_BAD_REPORT', `claims ${m.tokens} tokens; a unit trains 1 to ${maxTokens}`, a.id, true)
    }
    return { ok: true, payloadBytes: m.payloadBytes }
  }

  /** Payload checks, then accept (commit, fold) or refuse; both leave a ledger row. */
  async settle (peerId: string, header: ReportHeader, payload: Uint8Array): Promise<ReportResponse> {
    const m = header.metadata
    const result = await this.#locks.with(m.runId, async (): Promise<ReportResponse> => {
      const { db } = this.#o
      const a = await db.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id')
        .select(['assignments.id', 'assignments.status', 'assignments.report_blob', 'assignments.node_id', 'rounds.status as round_status', 'rounds.id as round_id', 'rounds.base_checkpoint'])
        .where('assignments.id', '=', m.assignmentId).executeTakeFirstOrThrow()
      if (a.status === 'accepted' && a.report_blob === m.payloadSha256) return { ok: true, outcome: 'accepted', duplicate: true }
      const refuse = async (code: string, message: string, mark = true): Promise<ReportResponse> => {
        const r = await this.#refuse(header, peerId, code, message, a.id, mark)
        return { ok: false, outcome: 'refused', code: r.code, message: r.message }
      }
      if (a.status !== 'assigned' || a.round_status !== 'open') return await refuse('ERR_STALE', 'the round closed while the report was uploading', false)
      const sha = createHash('sha256').update(payload).digest('hex')
      if (sha !== m.payloadSha256) return await refuse('ERR_BAD_PAYLOAD', 'payload does not match the signed sha256')
      const loaded = await this.#load(m.runId)
      let delta: Float32Array
      // Decoding refuses non-finite values (ERR_NON_FINITE) as well as malformed bytes.
      try {
        delta = this.#o.ops.decode(loaded.spec.codec, payload, loaded.spec.paramCount)
      } catch (err) {
        const nonFinite = err instanceof PseudoGradientError && err.code === 'ERR_NON_FINITE'
        return await refuse(nonFinite ? 'ERR_NOT_FINITE' : 'ERR_BAD_PAYLOAD', (err as Error).message)
      }
      const theta = await this.#base(loaded, a.base_checkpoint)
      const norm = l2Norm(delta)
      const bound = this.#o.normBoundRatio * Math.max(1, l2Norm(theta))
      if (norm > bound) return await refuse('ERR_NORM_BOUND', `pseudo-gradient norm ${norm.toFixed(3)} exceeds the bound ${bound.toFixed(3)}`)
      const acc = await this.#accumulator(loaded, a.round_id)
      const node = await db.selectFrom('nodes').select(['id', 'organization_id']).where('peer_id', '=', peerId).executeTakeFirstOrThrow()
      const metadataText = new TextDecoder().decode(canonicalReportMetadata(m))
      await db.transaction().execute(async (trx) => {
        await this.#o.blobs.put(payload)
        await trx.insertInto('blobs').values({ sha256: sha, size: payload.byteLength, kind: 'report', meta: JSON.stringify({ assignmentId: a.id }) })
          .onConflict((oc) => oc.column('sha256').doNothing()).execute()
        await trx.updateTable('assignments').set({ status: 'accepted', report_blob: sha, resolved_at: new Date() }).where('id', '=', a.id).execute()
        await trx.updateTable('rounds').set((eb) => ({ tokens: eb('tokens', '+', m.tokens) })).where('id', '=', a.round_id).execute()
        await appendLedgerEntry(trx, {
          runId: m.runId, round: m.round, nodeId: node.id, peerId, organizationId: node.organization_id, assignmentId: a.id,
          tokens: m.tokens, computeSeconds: m.computeSeconds, outcome: 'accepted', reason: null, metadata: metadataText, signature: header.signature
        })
      })
      acc.fold(delta, m.tokens, m.lossCurve.at(-1))
      this.#o.log.info('report accepted', { peerId, runId: m.runId, round: m.round, tokens: m.tokens, norm })
      this.#o.changes.publish('ledger', m.runId)
      return { ok: true, outcome: 'accepted', duplicate: false }
    })
    // Close at quorum right away rather than at the next tick.
    if (result.ok && !result.duplicate) void this.tick().catch(() => {})
    return result
  }
}

import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { Insertable, Kysely, Selectable } from 'kysely'
import { DEFAULT_SCREENING, momentumParts, readMomentum, storedCheckpointParts } from '@barnraise/trainer'
import { allowedCodecs, encodedByteLength } from '@barnraise/protocol'
import { carriedResidual, encodeAppliedInSlices, outerStepInSlices, residualParts, sparseBroadcastInSlices, streamedOuterStep, streamedSparseBroadcast } from './close-in-slices.ts'
import type { CodecName, ExecutorKind, RoundUpdate, ScoreResult, TokenRange, UnitDecline, WorkResponse } from '@barnraise/protocol'
import type { AssignmentsTable, Database, DataCursor, RoundsTable } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { BlobPins } from '../blobs/blob-pins.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import type { Logger } from '../log.ts'
import type { Presence } from '../p2p/presence.ts'
import type { ChangeFeed } from '../events/change-feed.ts'
import type { WorkSource } from '../p2p/work-service.ts'
import { organizationsServing } from '../nodes/serving-choices.ts'
import { takeRanges, rangeTokens } from './data-cursor.ts'
import { pickTwins } from './redundancy.ts'
import type { NodeScoring } from './node-scoring.ts'
import type { RunLocks } from './run-lock.ts'
import { failRun } from '../runs/runs.ts'
import type { StoredRunSpec } from '../runs/runs.ts'
import { aggregationRule, broadcastsUpdates, defencesOf, errorFeedbackDecayOf, overlapOf, plannedRounds, runIsDone, unitInnerSteps } from '../runs/run-plan.ts'
import { measuredTimings, stepsByTiming } from './unit-sizing.ts'
import { pickFromPool, requeuedPart, unitTokenBudget } from './requeue.ts'
import { backedOffNodes } from './node-backoff.ts'
import { chooseCodec } from './codec-choice.ts'
import type { NodeTiming } from './unit-sizing.ts'
import { broadcastCodecOf, roundUpdate, sendsAggregate, updateWorthSending } from './round-update.ts'
import { l2Norm } from './accumulator.ts'
import { holdMs, retryAfterHoldMs } from './wait-poll.ts'
import type { RunCache } from './run-cache.ts'
import type { ReportIntake } from './report-intake.ts'
import { pruneAfterRound } from '../runs/checkpoint-retention.ts'

export interface RoundEngineOptions {
  db: Kysely<Database>
  blobs: BlobStore
  presence: Presence
  changes: ChangeFeed
  log: Logger
  /** The loaded runs this engine shares with report intake. */
  cache: RunCache
  /** The per-run locks this engine shares with report intake. */
  locks: RunLocks
  /** Report bytes being stored right now, which the spent-report sweep must not delete (shared with report intake). */
  pins: BlobPins
  /** Where a node's declined unit is recorded before it asks for more work. */
  intake: Pick<ReportIntake, 'decline' | 'settleHeld' | 'finishScoring'>
  /** Scoring tasks, handed out to idle nodes (rounds/node-scoring.ts); none: nodes never score. */
  scoring?: NodeScoring
  /** How often the engine looks at running runs. */
  tickMs?: number
  /** Told when a round ends (for /metrics). */
  onRoundEnded?: (outcome: 'closed' | 'abandoned') => void
}

/** Open rounds whose update the engine keeps worked out (two per overlapped run). */
const MAX_CACHED_UPDATES = 64

/**
 * The DiLoCo round loop. Every transition is a row in Postgres (rounds, assignments, ledger,
 * checkpoints, the run's cursor), so a restarted coordinator picks up where it stopped: the
 * open round continues and its running sum is rebuilt from the accepted reports on disk.
 */
export class RoundEngine implements WorkSource {
  readonly #o: Required<Omit<RoundEngineOptions, 'scoring'>> & Pick<RoundEngineOptions, 'scoring'>
  readonly #locks: RunLocks
  readonly #cache: RunCache
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | undefined
  #stopped = false
  #nudging = false
  #nudgedAgain = false
  /** Spent report files being deleted, one round's after another. */
  #sweeping: Promise<void> = Promise.resolve()
  /** Work requests held until a round opens (or their hold ends): each wakes its request. */
  readonly #held = new Set<() => void>()
  /** Each run's round-0 checkpoint, once asked for: it never changes. */
  readonly #initialCheckpoints = new Map<string, string>()
  /** Open rounds' updates, worked out once per round rather than once per node (the newest few kept). */
  readonly #updates = new Map<string, { update: RoundUpdate | undefined, offerMomentum: boolean }>()

  constructor (options: RoundEngineOptions) {
    this.#o = { tickMs: 500, onRoundEnded: () => {}, ...options }
    this.#cache = options.cache
    this.#locks = options.locks
  }

  /**
   * Looks at the runs now instead of at the next tick (a report was accepted: the round may be at
   * quorum). Nudges that arrive while one is being handled fold into one more look after it: a
   * thousand reports a round make a few ticks, not a thousand.
   */
  nudge (): void {
    if (this.#stopped) return
    if (this.#nudging) { this.#nudgedAgain = true; return }
    this.#nudging = true
    void (async () => {
      try {
        do {
          this.#nudgedAgain = false
          await this.tick().catch((err: unknown) => { this.#o.log.error('engine tick failed', { err }) })
        } while (this.#nudgedAgain && !this.#stopped)
      } finally {
        this.#nudging = false
      }
    })()
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
    this.#wakeHeld()
    clearTimeout(this.#timer)
    await this.#ticking
    await this.#sweeping
  }

  /** Advances every running run by one step: open a round, or close one that is done. */
  async tick (): Promise<void> {
    const runs = await this.#o.db.selectFrom('runs').select('id').where('status', '=', 'running').execute()
    for (const { id } of runs) {
      if (this.#stopped) return
      // Failed and forgotten before the lock goes: a close that threw may have spent the round's
      // sum and taken the cache's base, and a report waiting on the lock must find the run
      // failed and its rounds ended, not that half-closed state.
      await this.#locks.with(id, async () => {
        try {
          await this.#advance(id)
        } catch (err) {
          this.#o.log.error('run failed', { runId: id, err })
          await failRun(this.#o.db, id, `coordinator error: ${(err as Error).message}`)
          this.#cache.forget(id)
          this.#o.changes.publish('runs', id)
        }
      })
    }
  }

  /**
   * Takes as many steps as are due for one run (close a round, open the next, open the one after
   * when rounds overlap), so a closed round's successor opens without waiting for a tick.
   */
  async #advance (runId: string): Promise<void> {
    try {
      for (let step = 0; step < 3 && !this.#stopped; step++) {
        if (!await this.#step(runId)) return
      }
    } finally {
      // A closed round's sum is the next round's where it opened in these steps; else it goes.
      this.#cache.releaseSpareSum(runId)
    }
  }

  /** One transition of a run's rounds; false when nothing was due. */
  async #step (runId: string): Promise<boolean> {
    const { db } = this.#o
    const run = await db.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow()
    if (run.status !== 'running') return false
    const spec = await this.#cache.spec(runId)
    if (runIsDone(spec, { rounds: run.current_round, tokens: run.tokens_seen })) {
      await db.updateTable('runs').set({ status: 'completed', updated_at: new Date() }).where('id', '=', runId).execute()
      this.#o.log.info('run completed', { runId, rounds: run.current_round, tokens: run.tokens_seen })
      this.#o.changes.publish('runs', runId)
      return false
    }
    const open = await db.selectFrom('rounds').selectAll().where('run_id', '=', runId).where('status', '=', 'open').orderBy('number').execute()
    const oldest = open[0]
    if (oldest === undefined) {
      if (run.current_round === 0) await this.#evaluateInitial(runId, run.latest_checkpoint!)
      return await this.#openRound(runId, run.current_round + 1, run.latest_checkpoint!, run.data_cursor, spec, new Date(Date.now() + spec.roundDeadlineSeconds * 1000))
    }
    // Only the oldest open round can close: a newer one's outer step needs the checkpoint it makes.
    if (await this.#settle(runId, oldest, run.current_round)) return true
    if (overlapOf(spec) === 'none' || open.length > 1 || !await this.#worthAnotherRound(spec, run.tokens_seen, oldest.id, oldest.number)) return false
    // The next round trains from the base the oldest one trained from and is applied to the
    // checkpoint the oldest one makes; its units start as soon as each node reports its current one.
    const deadline = new Date(Math.max(Date.now(), oldest.deadline_at.getTime()) + spec.roundDeadlineSeconds * 1000)
    return await this.#openRound(runId, oldest.number + 1, run.latest_checkpoint!, run.data_cursor, spec, deadline)
  }

  /** Whether a round after the open round `number` would still count toward the run's goal. */
  async #worthAnotherRound (spec: StoredRunSpec, tokensSeen: number, roundId: string, number: number): Promise<boolean> {
    if (spec.rounds !== undefined && number >= spec.rounds) return false
    if (spec.tokenTarget === undefined) return true
    const planned = await this.#o.db.selectFrom('assignments').select((eb) => eb.fn.sum<number>('tokens').as('tokens'))
      .where('round_id', '=', roundId).where('twin_of', 'is', null).executeTakeFirstOrThrow()
    return tokensSeen + Number(planned.tokens ?? 0) < spec.tokenTarget
  }

  /** Closes (or abandons) the open round when all its units are in or its deadline passed; true when it did. */
  async #settle (runId: string, round: Selectable<RoundsTable>, currentRound: number): Promise<boolean> {
    const { db } = this.#o
    const acc = await this.#cache.accumulator(runId, round.id)
    const counts = await db.selectFrom('assignments').select(['status']).select((eb) => eb.fn.countAll<number>().as('n'))
      .where('round_id', '=', round.id).groupBy('status').execute()
    const n = (s: string): number => Number(counts.find((c) => c.status === s)?.n ?? 0)
    const scoring = this.#o.scoring
    const scoringOut = scoring === undefined ? 0 : await scoring.outstanding(round.id)
    if (n('assigned') === 0 && scoringOut === 0 && acc.reports + n('held') > 0) {
      // A held report whose twin was refused or never came is folded alone.
      await this.#o.intake.settleHeld(runId, round.id)
      // Settling can refuse every held report (one judged on its scorers' answers, recorded
      // before it could be judged): a close now would take an outer step on nothing and count
      // the round. Like a round whose every unit was refused, it waits for its deadline.
      if (acc.reports > 0) {
        await this.#closeRound(runId, round.id, round.number, currentRound, 'all work units reported')
        return true
      }
    }
    if (Date.now() < round.deadline_at.getTime()) return false
    await scoring?.expire(round.id)
    await this.#o.intake.settleHeld(runId, round.id)
    if (acc.reports > 0) {
      await this.#closeRound(runId, round.id, round.number, currentRound, `deadline: ${acc.reports} of ${acc.reports + n('assigned') + n('refused')} units reported`)
      return true
    }
    await db.transaction().execute(async (trx) => {
      await trx.updateTable('assignments').set({ status: 'expired', resolved_at: new Date() })
        .where('round_id', '=', round.id).where('status', '=', 'assigned').execute()
      await trx.updateTable('rounds').set({ status: 'abandoned', closed_at: new Date(), close_reason: 'no accepted report before the deadline' })
        .where('id', '=', round.id).execute()
    })
    this.#cache.dropRound(runId, round.id)
    this.#o.log.warn('round abandoned', { runId, round: round.number })
    this.#o.onRoundEnded('abandoned')
    this.#o.changes.publish('runs', runId)
    return true
  }

  /** Gives the initial checkpoint its validation loss, the curve's first point. */
  async #evaluateInitial (runId: string, sha: string): Promise<void> {
    const row = await this.#o.db.selectFrom('checkpoints').select('val_loss').where('run_id', '=', runId).where('sha256', '=', sha).executeTakeFirst()
    if (row === undefined || row.val_loss !== null) return
    const loss = await this.#cache.validationLoss(runId, await this.#cache.base(runId, sha))
    if (loss === undefined) { await this.#cache.validateLater(runId, sha); return }
    await this.#o.db.updateTable('checkpoints').set({ val_loss: loss }).where('sha256', '=', sha).where('run_id', '=', runId).execute()
  }

  /**
   * The nodes this run's next round goes to, at most its maxNodes, oldest first (a stable order
   * keeps assignments predictable): unrevoked nodes of labs that serve the run, connected, and
   * active lately (a heartbeat or a work request: Presence.isLive; a connection alone costs
   * nothing to keep). A node whose latest units expired unreported sits the round out
   * (node-backoff.ts) unless the run has too few nodes without it.
   */
  async #eligibleNodes (runId: string, spec: StoredRunSpec): Promise<Array<{ id: string, peer_id: string, organization_id: string, upload_bytes_per_second: number | null }>> {
    const serving = await organizationsServing(this.#o.db, runId)
    // Only the live peers' rows (at most one a connection), not every node the serving labs
    // ever enrolled: this runs at every round opening.
    const livePeers = this.#o.presence.livePeers()
    if (serving.size === 0 || livePeers.length === 0) return []
    const nodes = await this.#o.db.selectFrom('nodes').select(['id', 'peer_id', 'organization_id', 'upload_bytes_per_second']).where('revoked_at', 'is', null)
      .where('organization_id', 'in', [...serving]).where('peer_id', 'in', livePeers).orderBy('first_seen_at').execute()
    const live = nodes.filter((n) => this.#o.presence.isLive(n.peer_id))
    const backedOff = await backedOffNodes(this.#o.db, runId, live.map((n) => n.id))
    if (backedOff.size === 0) return live.slice(0, spec.maxNodes)
    const ready = live.filter((n) => !backedOff.has(n.id))
    // A run that could not open a round without them is no faster for their absence (and its
    // rounds are what ends their backoff): the shortest streaks make up its minNodes.
    const wanted = new Set([...ready.slice(0, spec.maxNodes), ...live.filter((n) => backedOff.has(n.id))
      .sort((a, b) => backedOff.get(a.id)! - backedOff.get(b.id)!).slice(0, Math.max(0, spec.minNodes - ready.length))])
    if (ready.length < spec.minNodes) this.#o.log.info('nodes back from a backoff to make up the run\'s minimum', { runId, nodes: spec.minNodes - ready.length })
    return live.filter((n) => wanted.has(n))
  }

  /** Each node's measured timing (in `nodes` order) with its lab, undefined where it has no accepted report in the run yet. */
  async #timingsOf (db: Kysely<Database>, runId: string, nodes: Array<{ id: string, organization_id: string }>, spec: StoredRunSpec): Promise<Array<NodeTiming | undefined>> {
    const timings = await measuredTimings(db, runId, nodes.map((n) => n.id), spec.recipe.innerSteps, overlapOf(spec) !== 'none')
    return nodes.map((n) => { const t = timings.get(n.id); return t === undefined ? undefined : { ...t, lab: n.organization_id } })
  }

  async #openRound (runId: string, number: number, baseCheckpoint: string, cursor: DataCursor, spec: StoredRunSpec, deadline: Date): Promise<boolean> {
    const nodes = await this.#eligibleNodes(runId, spec)
    if (nodes.length < spec.minNodes) return false
    const { recipe } = spec
    const window = recipe.seqLen + 1
    // Node scoring and twins are the two ways a large model's reports are checked; a report held
    // for both at once is more bookkeeping than either check is worth, so a round uses one. It
    // doubles units (where the run asks for redundancy) when nodes do not score the run, or when
    // some lab of this round has no scorers in two other labs now (its reports would go unscored).
    const nodeScored = defencesOf(spec).screening && await this.#cache.nodesScore(runId) && this.#o.scoring !== undefined &&
      await this.#o.scoring.covers(runId, nodes.map((n) => n.organization_id))
    if (!nodeScored && defencesOf(spec).screening && defencesOf(spec).redundancy > 0 && await this.#cache.nodesScore(runId)) {
      this.#o.log.info('too few scorers from other labs online: this round doubles units instead', { runId, round: number })
    }
    const opened = await this.#o.db.transaction().execute(async (trx) => {
      // Opened by this clock, the one units are resolved by (a node's backoff counts the rounds opened after its unit expired).
      const round = await trx.insertInto('rounds').values({ run_id: runId, number, status: 'open', base_checkpoint: baseCheckpoint, deadline_at: deadline, opened_at: new Date() })
        .returning('id').executeTakeFirstOrThrow()
      // Work a vanished or refused node did not finish goes out again before fresh tokens.
      const pool = (await trx.selectFrom('assignments').select(['id', 'ranges', 'inner_steps', 'requeued_steps'])
        .where('run_id', '=', runId).where('status', 'in', ['expired', 'refused']).where('requeued', '=', false)
        // Not a unit whose twin was accepted, or may still be (an overlapped run opens this round
        // while the twin's is open): those ranges are trained and folded. One whose twin fails
        // later is requeued at the next opening.
        .where((eb) => eb.not(eb.exists(eb.selectFrom('assignments as twin').select('twin.id')
          .whereRef('twin.twin_of', '=', 'assignments.id').where('twin.status', 'in', ['accepted', 'held', 'assigned']))))
        .orderBy('created_at').execute())
        .map((p) => ({ id: p.id, ranges: p.ranges, steps: p.inner_steps ?? recipe.innerSteps, handed: p.requeued_steps, innerSteps: p.inner_steps }))
      let next = cursor
      // A twin takes its original's ranges instead of fresh ones; it is never requeued itself
      // (its original's ranges go out again if both fail).
      // Paired without regard to device class: the class is the node's own claim, and pairing by
      // it would let two colluders naming one made-up GPU be each other's only twin.
      const twins = new Map(nodeScored ? [] : pickTwins(nodes.length, defencesOf(spec).redundancy, number).map(([original, twin]) => [twin, original]))
      // Ids are made here so the whole round goes in as one INSERT (one round trip, not one a node).
      const made: Array<{ id: string, ranges: TokenRange[], steps: number | null, codec: CodecName | null }> = []
      const rows: Array<Insertable<AssignmentsTable>> = []
      // Pool units handed out again in this round: all of it (true), or their steps so far.
      const requeued = new Map<string, number | true>()
      // Sized by throughput: each node's own inner steps from its compute speed and its link (unit-sizing.ts); null keeps the run's.
      const allowed = allowedCodecs(spec)
      const timings = spec.unitSizing === 'throughput' || allowed.length > 1 ? await this.#timingsOf(trx, runId, nodes, spec) : null
      const sized = spec.unitSizing === 'throughput' ? stepsByTiming(recipe.innerSteps, timings!) : null
      // A run that allows several codecs: each node's from its measured upload rate (codec-choice.ts); null is the run's own.
      const codecOf = (i: number, steps: number): CodecName | null => {
        if (allowed.length < 2) return null
        const timing = timings![i]
        const codec = chooseCodec({
          allowed,
          preferred: spec.codec,
          paramCount: spec.paramCount,
          uploadBytesPerSecond: nodes[i]!.upload_bytes_per_second ?? undefined,
          unitSeconds: timing !== undefined ? steps * timing.secondsPerStep : spec.roundDeadlineSeconds,
          overlapped: overlapOf(spec) !== 'none'
        })
        return codec === spec.codec ? null : codec
      }
      const unitTokens = (ranges: TokenRange[], steps: number | null): number => unitTokenBudget(rangeTokens(ranges), steps ?? recipe.innerSteps, recipe.batchSize, window)
      for (const [i, node] of nodes.entries()) {
        if (twins.has(i)) continue
        let ranges: TokenRange[]
        let steps = sized?.[i] ?? null
        // A requeued unit goes out whole where it is no larger than this node's unit, else cut to
        // this node's size (requeue.ts): never a unit its node cannot train in time, or read.
        const from = pickFromPool(pool, steps ?? recipe.innerSteps)
        if (from >= 0) {
          const unit = pool[from]!
          const part = requeuedPart(unit, steps ?? recipe.innerSteps, window)
          ranges = part.ranges
          // Whole, it keeps its own steps (null: the run's).
          steps = unit.handed === 0 && part.handed === unit.steps ? unit.innerSteps : part.steps
          unit.handed = part.handed
          if (part.handed >= unit.steps) pool.splice(from, 1)
          requeued.set(unit.id, part.handed >= unit.steps ? true : part.handed)
        } else {
          const taken = takeRanges(next, spec.trainShards, (steps ?? recipe.innerSteps) * recipe.batchSize * window, window)
          ranges = taken.ranges
          next = taken.cursor
        }
        const id = randomUUID()
        const codec = codecOf(i, steps ?? recipe.innerSteps)
        rows.push({ id, run_id: runId, round_id: round.id, node_id: node.id, ranges: JSON.stringify(ranges), tokens: unitTokens(ranges, steps), status: 'assigned', inner_steps: steps, codec })
        made[i] = { id, ranges, steps, codec }
      }
      for (const [twin, original] of twins) {
        const of = made[original]!
        rows.push({
          id: randomUUID(), run_id: runId, round_id: round.id, node_id: nodes[twin]!.id, ranges: JSON.stringify(of.ranges), tokens: unitTokens(of.ranges, of.steps),
          // A twin's report must be comparable with its original's: the same codec.
          status: 'assigned', twin_of: of.id, requeued: true, inner_steps: of.steps, codec: of.codec
        })
      }
      const whole = [...requeued].filter(([, h]) => h === true).map(([id]) => id)
      if (whole.length > 0) await trx.updateTable('assignments').set({ requeued: true }).where('id', 'in', whole).execute()
      for (const [id, handed] of requeued) if (handed !== true) await trx.updateTable('assignments').set({ requeued_steps: handed }).where('id', '=', id).execute()
      // Postgres takes at most 65,535 parameters a statement: 11 a row.
      for (let i = 0; i < rows.length; i += 5000) await trx.insertInto('assignments').values(rows.slice(i, i + 5000)).execute()
      await trx.updateTable('runs').set({ data_cursor: JSON.stringify(next), updated_at: new Date() }).where('id', '=', runId).execute()
      return round
    })
    await this.#cache.openRound(runId, opened.id, number)
    this.#wakeHeld()
    this.#o.log.info('round opened', { runId, round: number, nodes: nodes.length, deadline: deadline.toISOString() })
    this.#o.changes.publish('runs', runId)
    return true
  }

  async #closeRound (runId: string, roundId: string, number: number, currentRound: number, reason: string): Promise<void> {
    const { db, blobs } = this.#o
    const spec = await this.#cache.spec(runId)
    const run = await db.selectFrom('runs').select(['latest_checkpoint', 'outer_state', 'broadcast_residual', 'tokens_seen']).where('id', '=', runId).executeTakeFirstOrThrow()
    const acc = await this.#cache.accumulator(runId, roundId)
    const defences = defencesOf(spec)
    // The codecs the round's reports came in (a run may let slow links use a smaller one) and their bytes.
    const folded = await db.selectFrom('assignments').select(['codec', (eb) => eb.fn.countAll<number>().as('n')])
      .where('round_id', '=', roundId).where('status', '=', 'accepted').groupBy('codec').execute()
    const reportBytes = folded.reduce((sum, f) => sum + Number(f.n) * encodedByteLength(f.codec ?? spec.codec, spec.paramCount), 0)
    // Reports in several codecs cannot be listed for a node to fold in one: the mean goes out.
    const mixed = new Set(folded.map((f) => f.codec ?? spec.codec)).size > 1
    const broadcastCodec = broadcastCodecOf(spec)
    // Whole-model arithmetic from here on goes a slice at a time (close-in-slices.ts): the same
    // bits, the event loop let through. It holds as few models at once as it can (measured by
    // `pnpm bench round-memory`): the round's update is made in its sum's memory (the accumulator
    // is spent), the broadcast's applied values replace it there, the outer step changes the
    // cache's base in place and streams the momentum from its blob into the new one, and the
    // checkpoint is written from θ's own memory. The spent sum, zeroed, is the next round's
    // (RunCache.advanceBase). A close that throws fails the run (tick), which drops what the
    // cache held.
    const applied = await acc.takeUpdateInSlices(aggregationRule(defences), defences.clipToMedianNorm === null ? {} : { clipToMedianNorm: defences.clipToMedianNorm })
    // Where fewer bytes than the reports, nodes rebuild the next base from the mean itself (int8 for int8 and topk runs,
    // topk where the broadcast is sparse): the coordinator applies exactly what it sends, so their bases hash the same (round-update.ts).
    // A sparse broadcast's residual is unchanged by a round whose reports go out as they are.
    const { updateBlob, residualBlob } = broadcastsUpdates(defences) && acc.reports > 0 && (mixed || sendsAggregate(acc.reports, reportBytes, broadcastCodec, spec.paramCount))
      ? await this.#broadcast(runId, number, run.broadcast_residual, applied, spec)
      : { updateBlob: null, residualBlob: run.broadcast_residual }
    // Taken only now, after the broadcast's own buffers are gone: the base is the cache's.
    const theta = await this.#cache.takeBase(runId, run.latest_checkpoint!)
    const outerState = await this.#outerStep(runId, number, theta, applied, run.outer_state, spec)
    const valLoss = await this.#cache.validationLoss(runId, theta)
    const checkpoint = await storeBlob(db, blobs, storedCheckpointParts(spec.modelConfig, theta), 'checkpoint', { runId, round: number })
    const tokensSeen = run.tokens_seen + acc.tokens
    const done = runIsDone(spec, { rounds: currentRound + 1, tokens: tokensSeen })
    const overlapped = overlapOf(spec) !== 'none'
    let spentUpdates: string[] = []
    // Rounds still open when the run reached its goal (overlapped runs): their sums go too.
    let goalAbandoned: string[] = []
    const reportBlobs = await db.transaction().execute(async (trx) => {
      await trx.updateTable('assignments').set({ status: 'expired', resolved_at: new Date() })
        .where('round_id', '=', roundId).where('status', '=', 'assigned').execute()
      await trx.updateTable('rounds').set({
        status: 'closed', closed_at: new Date(), close_reason: reason, result_checkpoint: checkpoint, applied_to: run.latest_checkpoint, update_blob: updateBlob,
        tokens: acc.tokens, train_loss: acc.trainLoss(), val_loss: valLoss ?? null
      }).where('id', '=', roundId).execute()
      if (done) {
        // An overlapped run can reach its goal with its next round already training: that round ends here.
        const later = (await trx.updateTable('rounds').set({ status: 'abandoned', closed_at: new Date(), close_reason: 'the run reached its goal' })
          .where('run_id', '=', runId).where('status', '=', 'open').where('id', '!=', roundId).returning('id').execute()).map((r) => r.id)
        if (later.length > 0) {
          await trx.updateTable('assignments').set({ status: 'expired', resolved_at: new Date() })
            .where('round_id', 'in', later).where('status', 'in', ['assigned', 'held']).execute()
        }
        goalAbandoned = later
      }
      await trx.insertInto('checkpoints').values({ sha256: checkpoint, run_id: runId, round: number, tokens_seen: tokensSeen, val_loss: valLoss ?? null })
        .onConflict((oc) => oc.columns(['run_id', 'round']).doNothing()).execute()
      await trx.updateTable('runs').set({
        current_round: number, tokens_seen: tokensSeen, latest_checkpoint: checkpoint, outer_state: outerState, broadcast_residual: residualBlob,
        updated_at: new Date(), ...(done ? { status: 'completed' as const } : {})
      }).where('id', '=', runId).execute()
      // Sketches for replay checks after a restart: only as many as a screen keeps.
      await sql`update assignments set sketch = null where run_id = ${runId} and sketch is not null and id not in
        (select id from assignments where run_id = ${runId} and sketch is not null order by resolved_at desc nulls last limit ${DEFAULT_SCREENING.earlierKept})`.execute(trx)
      // A run that broadcasts its updates keeps this round's reports until the next one closes,
      // where they are worth fetching: nodes rebuild the next base from them (round-update.ts).
      const keepThisRound = broadcastsUpdates(defences) && !done && updateBlob === null &&
        updateWorthSending(acc.reports, reportBytes, broadcastCodec, spec.paramCount)
      // Overlapped, the round after next is built on this round's checkpoint, so the round before
      // this one (kept at its own close if worth it) is still being rebuilt from until now.
      const keptBefore = overlapped && !done ? number - 1 : number
      // Aggregates no node rebuilds from any more: rounds before those kept (all of them once done).
      spentUpdates = (await trx.selectFrom('rounds').select('update_blob').where('run_id', '=', runId).where('update_blob', 'is not', null)
        .where('number', done ? '<=' : '<', done ? number : keptBefore).execute()).map((r) => r.update_blob!)
      if (spentUpdates.length > 0) await trx.updateTable('rounds').set({ update_blob: null }).where('run_id', '=', runId).where('update_blob', 'in', spentUpdates).execute()
      return await trx.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id')
        .innerJoin('blobs', (j) => j.onRef('blobs.sha256', '=', 'assignments.report_blob').on('blobs.kind', '=', 'report'))
        .select('assignments.report_blob').distinct()
        .where('assignments.run_id', '=', runId)
        .where((eb) => eb.or([eb('rounds.number', '<', keptBefore), ...(keepThisRound ? [] : [eb('rounds.number', '=', number)])]))
        // The same bytes can be another unit's report still in use (in an open round of any run,
        // or in the round kept for the next update): those stay.
        .where(({ not, exists, selectFrom }) => not(exists(selectFrom('assignments as other')
          .innerJoin('rounds as other_round', 'other_round.id', 'other.round_id')
          .select('other.id')
          .whereRef('other.report_blob', '=', 'assignments.report_blob')
          .where((o) => o.or([
            o('other_round.status', '=', 'open'),
            // …or a round's aggregate that nodes still rebuild from (the same bytes, when the reports were identical).
            o.exists(o.selectFrom('rounds as kept').select('kept.id').whereRef('kept.update_blob', '=', 'assignments.report_blob')),
            ...(keepThisRound ? [o.and([o('other_round.run_id', '=', runId), o('other_round.number', '=', number)])] : []),
            ...(keptBefore < number ? [o.and([o('other_round.run_id', '=', runId), o('other_round.number', '>=', keptBefore), o('other_round.number', '<', number)])] : [])
          ])))))
        .where('rounds.status', '!=', 'open').execute()
    })
    // Counted as soon as it is committed (the run may read as completed from here on).
    this.#o.onRoundEnded('closed')
    // Too costly to measure on the event loop: a worker thread writes it into the rows later.
    if (valLoss === undefined) await this.#cache.validateLater(runId, checkpoint)
    await this.#cache.advanceBase(runId, roundId, checkpoint, theta)
    for (const id of goalAbandoned) this.#cache.dropRound(runId, id)
    // Folded into a checkpoint and no longer needed for a node to rebuild a base from: the
    // aggregates no round keeps, then the reports' rows in one statement (their files below).
    for (const sha of spentUpdates) {
      // Only the aggregate's own row and file: the same bytes may be a report's still in use.
      const gone = await db.deleteFrom('blobs').where('sha256', '=', sha).where('kind', '=', 'update').executeTakeFirst()
      if (gone.numDeletedRows > 0n) await blobs.delete(sha)
    }
    const spent = reportBlobs.map((r) => r.report_blob!)
    // Their rows and files go after the next round is open (a thousand deletes need not hold the
    // round transition: bench/scale.bench.ts), each unless the same bytes came back meanwhile as
    // another unit's report (a node may send a delta again, in this run or another): named by a
    // unit accepted or held in an open round, or being stored right now (pinned:
    // blobs/blob-pins.ts). The close chose these before such a copy could commit, so the check is
    // made again here, with the deletions marked; a round closed later retries what a crash left.
    this.#sweeping = this.#sweeping.then(async () => {
      await this.#o.pins.deleteUnlessPinned(spent, async (shas) => {
        const used = new Set<string>()
        for (let i = 0; i < shas.length; i += 5000) {
          const chunk = shas.slice(i, i + 5000)
          const copies = await db.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id').select('assignments.report_blob')
            .where('assignments.report_blob', 'in', chunk).where('rounds.status', '=', 'open').where('assignments.status', 'in', ['accepted', 'held']).execute()
          for (const r of copies) used.add(r.report_blob!)
          for (const r of await db.selectFrom('blobs').select('sha256').where('sha256', 'in', chunk).where('kind', '!=', 'report').execute()) used.add(r.sha256)
        }
        return used
      }, async (shas) => {
        for (let i = 0; i < shas.length; i += 5000) await db.deleteFrom('blobs').where('sha256', 'in', shas.slice(i, i + 5000)).where('kind', '=', 'report').execute()
        for (const sha of shas) await blobs.delete(sha)
      })
    }).catch((err: unknown) => { this.#o.log.error('deleting spent reports failed', { runId, round: number, err }) })
    await pruneAfterRound(this.#o, runId)
    this.#o.log.info('round closed', { runId, round: number, reports: acc.reports, tokens: acc.tokens, valLoss, reason, checkpoint })
    this.#o.changes.publish('runs', runId)
  }

  /**
   * The outer step on θ in place with the values `applied`, and the new momentum stored; returns
   * its blob. The momentum is streamed from its blob through the step into the new one
   * (close-in-slices.ts), never whole in memory; one not in writeMomentum's layout is read whole.
   */
  async #outerStep (runId: string, number: number, theta: Float32Array, applied: Float32Array, momentumSha: string | null, spec: StoredRunSpec): Promise<string> {
    const { db, blobs } = this.#o
    const opts = { lr: spec.recipe.outerLr, momentum: spec.recipe.outerMomentum }
    const meta = { runId, round: number }
    const streamed = momentumSha === null ? undefined : await streamedOuterStep(blobs, momentumSha, theta, applied, opts)
    if (streamed !== undefined) {
      const sha = await storeBlob(db, blobs, streamed.bytes, 'optimizer', meta)
      // θ is whole only once every slice was stepped.
      if (!streamed.finished()) throw new Error('the blob store stopped reading the new momentum before its end; the outer step is incomplete')
      return sha
    }
    const momentum = momentumSha === null ? null : readMomentum(await blobs.get(momentumSha), spec.paramCount)
    return await storeBlob(db, blobs, momentumParts(await outerStepInSlices(theta, applied, momentum, opts)), 'optimizer', meta)
  }

  /**
   * Encodes the round's update for nodes to apply (`broadcastCodecOf`) and stores it, with a
   * sparse broadcast's new residual; `values` become what the payload decodes to, what the
   * outer step applies. The payload is let go when it returns, before the close reads the base
   * and the momentum; the residuals stream from blob to blob (close-in-slices.ts), never whole
   * in memory, but for a carried one in another layout, read whole.
   */
  async #broadcast (runId: string, number: number, residualSha: string | null, values: Float32Array, spec: StoredRunSpec): Promise<{ updateBlob: string, residualBlob: string | null }> {
    const { db, blobs } = this.#o
    const meta = { runId, round: number }
    const codec = broadcastCodecOf(spec)
    if (codec !== 'topk') {
      const encoded = await encodeAppliedInSlices(codec, values)
      return { updateBlob: await storeBlob(db, blobs, encoded, 'update', meta), residualBlob: residualSha }
    }
    const carried = await this.#broadcastResidual(runId, residualSha, spec.paramCount)
    let sparse: { encoded: Uint8Array, residualBlob: string, residualNorm: number }
    if (carried instanceof Float32Array) {
      const whole = await sparseBroadcastInSlices(values, carried)
      sparse = { encoded: whole.encoded, residualBlob: await storeBlob(db, blobs, residualParts(whole.residual), 'optimizer', meta), residualNorm: l2Norm(whole.residual) }
    } else {
      const streamed = streamedSparseBroadcast(blobs, carried, values)
      const residualBlob = await storeBlob(db, blobs, streamed.residual, 'optimizer', meta)
      // The payload and the values applied are whole only once every slice was worked out.
      if (!streamed.finished()) throw new Error('the blob store stopped reading the new broadcast residual before its end; the sparse broadcast is incomplete')
      sparse = { encoded: streamed.encoded, residualBlob, residualNorm: streamed.residualNorm() }
    }
    this.#o.log.info('sparse broadcast', { runId, round: number, bytes: sparse.encoded.byteLength, residualCarried: carried !== null, residualNorm: sparse.residualNorm })
    return { updateBlob: await storeBlob(db, blobs, sparse.encoded, 'update', meta), residualBlob: sparse.residualBlob }
  }

  /**
   * The sparse broadcast's carried residual: its blob where it streams, its values where stored
   * in another layout, or null for none yet. A residual that cannot be read (its file lost or
   * damaged) is dropped with a warning rather than stalling the run: it only holds what earlier
   * broadcasts left out, never anything a node's base depends on.
   */
  async #broadcastResidual (runId: string, sha256: string | null, paramCount: number): Promise<string | Float32Array | null> {
    if (sha256 === null) return null
    const carried = await carriedResidual(this.#o.blobs, sha256, paramCount)
    if ('dropped' in carried) {
      this.#o.log.warn('the sparse broadcast\'s residual cannot be read; this round\'s broadcast starts without it', { runId, residual: sha256, err: carried.dropped })
      return null
    }
    return 'stream' in carried ? carried.stream : carried.whole
  }

  /**
   * The update that made the units' base of round `roundId`, and whether to offer the momentum:
   * only where this round's own reports, all of them in, would be worth fetching instead of the
   * next model (a node would otherwise download a second model-sized blob for nothing).
   */
  async #roundUpdate (runId: string, roundId: string, base: string, spec: StoredRunSpec): Promise<{ update: RoundUpdate | undefined, offerMomentum: boolean }> {
    const cached = this.#updates.get(roundId)
    if (cached !== undefined) return cached
    const update = await roundUpdate(this.#o.db, runId, base, spec)
    const units = await this.#o.db.selectFrom('assignments').select((eb) => eb.fn.countAll<number>().as('n')).where('round_id', '=', roundId).executeTakeFirstOrThrow()
    const n = Number(units.n)
    const entry = { update, offerMomentum: updateWorthSending(n, n * encodedByteLength(spec.codec, spec.paramCount), broadcastCodecOf(spec), spec.paramCount) }
    this.#updates.set(roundId, entry)
    if (this.#updates.size > MAX_CACHED_UPDATES) this.#updates.delete(this.#updates.keys().next().value!)
    return entry
  }

  /**
   * Work for an idle node: its unit in the open round, or "wait". A declined unit is recorded
   * first (see ReportIntake.decline). With `after`, a look ahead for a node still training unit
   * `after`: the unit that follows it, or "wait"; nothing else happens.
   */
  async workFor (peerId: string, decline?: UnitDecline, scored?: ScoreResult, after?: string, executor?: ExecutorKind): Promise<WorkResponse> {
    const { db } = this.#o
    const node = await db.selectFrom('nodes').select(['id', 'revoked_at']).where('peer_id', '=', peerId).executeTakeFirst()
    if (node === undefined) return { kind: 'refused', code: 'ERR_NOT_ENROLLED', message: 'enroll this node before asking for work' }
    if (node.revoked_at !== null) return { kind: 'refused', code: 'ERR_NODE_REVOKED', message: 'this node was revoked by its organization' }
    // Asking is being active: the next round may hand it a unit (Presence.isLive). The executor
    // it names decides which scoring tasks it may be handed (node-scoring.ts).
    this.#o.presence.askedForWork(peerId, executor)
    if (after !== undefined) {
      const next = await this.#unitFor(node.id, after)
      if (next !== undefined) return next
      const held = await this.#hold()
      return await this.#unitFor(node.id, after) ?? { kind: 'wait', retryAfterMs: retryAfterHoldMs(this.#o.presence.onlineCount(), held), reason: 'no unit after this one yet' }
    }
    if (decline !== undefined) await this.#o.intake.decline(peerId, decline)
    const scoring = this.#o.scoring
    if (scored !== undefined && scoring !== undefined) {
      const done = await scoring.record(node.id, scored)
      // The report's last score is in: judge it now, under its run's lock, as the intake does.
      if (done !== null) {
        await this.#locks.with(done.runId, async () => { await this.#o.intake.finishScoring(done.assignmentId) })
        this.nudge()
      }
    }
    let held = 0
    for (;;) {
      const unit = await this.#unitFor(node.id)
      if (unit !== undefined) return unit
      const task = await scoring?.taskFor(node.id)
      if (task != null) return { kind: 'score', task }
      if (held > 0 || this.#stopped) break
      held = await this.#hold()
    }
    return { kind: 'wait', retryAfterMs: retryAfterHoldMs(this.#o.presence.onlineCount(), held), reason: 'no work for this node now; it gets a unit when the next round opens' }
  }

  /** Holds a work request until a round opens or holdMs passes; returns how long it held. */
  async #hold (): Promise<number> {
    if (this.#stopped) return 0
    const started = Date.now()
    await new Promise<void>((resolve) => {
      const wake = (): void => { clearTimeout(timer); this.#held.delete(wake); resolve() }
      const timer = setTimeout(wake, holdMs(this.#o.presence.onlineCount()))
      this.#held.add(wake)
    })
    return Math.max(1, Date.now() - started)
  }

  /** Answers every held work request now (a round opened, or the engine stops). */
  #wakeHeld (): void {
    for (const wake of [...this.#held]) wake()
  }

  /** Whether `checkpoint` is the run's round-0 model (round 1's base; an overlapped round 2 trains from it too). */
  async #isInitial (runId: string, checkpoint: string): Promise<boolean> {
    let initial = this.#initialCheckpoints.get(runId)
    if (initial === undefined) {
      const row = await this.#o.db.selectFrom('rounds').select('base_checkpoint').where('run_id', '=', runId).where('number', '=', 1).executeTakeFirst()
      if (row === undefined) return false
      initial = row.base_checkpoint
      this.#initialCheckpoints.set(runId, initial)
    }
    return initial === checkpoint
  }

  /** The node's oldest unit still to train in an open round (handed out after unit `after`), as the work reply carries it. */
  async #unitFor (nodeId: string, after?: string): Promise<WorkResponse | undefined> {
    const { db } = this.#o
    const unit = await db.selectFrom('assignments')
      .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .innerJoin('runs', 'runs.id', 'assignments.run_id')
      .select(['assignments.id', 'assignments.ranges', 'assignments.inner_steps', 'assignments.codec', 'assignments.run_id', 'assignments.round_id', 'rounds.number', 'rounds.base_checkpoint', 'rounds.deadline_at', 'runs.name', 'runs.outer_state', 'runs.latest_checkpoint'])
      .where('assignments.node_id', '=', nodeId).where('assignments.status', '=', 'assigned')
      .where('rounds.status', '=', 'open').where('runs.status', '=', 'running')
      // "After" a unit: handed out later than it (its own round's and older units are still in flight).
      .$if(after !== undefined, (q) => q.where('assignments.created_at', '>', (eb) => eb.selectFrom('assignments as current').select('current.created_at').where('current.id', '=', after!)))
      // Rows of one round share a transaction's timestamp; an overlapped run's next round is later.
      .orderBy('assignments.created_at').orderBy('rounds.number').executeTakeFirst()
    if (unit === undefined) return undefined
    const spec = await this.#cache.spec(unit.run_id)
    const { recipe } = spec
    const { update, offerMomentum } = broadcastsUpdates(defencesOf(spec)) ? await this.#roundUpdate(unit.run_id, unit.round_id, unit.base_checkpoint, spec) : { update: undefined, offerMomentum: false }
    const overlap = overlapOf(spec)
    const steps = unitInnerSteps(spec, unit.inner_steps)
    const codec = unit.codec ?? spec.codec
    // Listed reports say their codec only where it is not this unit's (older agents know no such field).
    const { codec: reportsCodec, ...rest } = update ?? {}
    const sent = update === undefined ? undefined : { ...rest, ...(reportsCodec !== undefined && reportsCodec !== codec ? { codec: reportsCodec } : {}) } as RoundUpdate
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
          innerSteps: steps, batchSize: recipe.batchSize, seqLen: recipe.seqLen, lr: recipe.innerLr,
          warmupSteps: recipe.warmupSteps, weightDecay: recipe.weightDecay, beta1: recipe.beta1, beta2: recipe.beta2,
          gradClip: recipe.gradClip, seed: spec.seed,
          ...(defencesOf(spec).redundancy > 0 ? { freshInnerState: true } : {})
        },
        codec,
        deadline: unit.deadline_at.toISOString(),
        // A node on its own steps follows its own schedule: the same share of the run each round.
        scheduleOffset: (unit.number - 1) * steps,
        totalInnerSteps: plannedRounds(spec) * steps,
        // The run's momentum goes with its latest checkpoint only; an overlapped unit may train from the one before.
        ...(offerMomentum && unit.latest_checkpoint === unit.base_checkpoint ? { momentum: unit.outer_state } : {}),
        ...(sent !== undefined ? { update: sent } : {}),
        ...(await this.#isInitial(unit.run_id, unit.base_checkpoint) ? { initialSeed: spec.seed } : {}),
        ...(overlap !== 'none' ? { overlap } : {}),
        // Absent is all of it: an agent from before the setting keeps doing what it did.
        ...(errorFeedbackDecayOf(spec) !== 1 ? { errorFeedbackDecay: errorFeedbackDecayOf(spec) } : {})
      }
    }
  }
}

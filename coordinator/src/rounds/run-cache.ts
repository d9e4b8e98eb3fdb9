import type { Kysely } from 'kysely'
import { decodePseudoGradient, parseReportMetadata } from '@barnraise/protocol'
import { DEFAULT_SCREENING, ReportScreen, decodeShard, encodeShard, validationBatches, validationGradient, validationLoss, validationWindowStarts, createParamSet, sketchDelta, sketchFromBytes } from '@barnraise/trainer'
import type { DeltaSketch } from '@barnraise/trainer'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { Logger } from '../log.ts'
import { RoundAccumulator, zeroInSlices } from './accumulator.ts'
import type { StoredRunSpec } from '../runs/runs.ts'
import { INLINE_EVAL_FLOPS, INLINE_SCORE_FLOPS, SCORING_MAX_PARAMS, defencesOf, evaluationFlops, evaluationWindows, scorer, keepsReports, overlapOf, scoringTaskShape, scoringWindows, storedLoss } from '../runs/run-plan.ts'
import { checkpointWeights } from '../checkpoints/checkpoint-weights.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import type { BackgroundEvaluation } from '../checkpoints/background-evaluation.ts'

/** What the coordinator keeps in memory for a running run; all of it can be rebuilt from the database and blob store. */
interface LoadedRun {
  readonly spec: StoredRunSpec
  /** The weights of the checkpoint the open (or next) round starts from. */
  base?: { sha: string, flat: Float32Array }
  validation?: Uint8Array | Int32Array
  /** Each open round's running sum (two at once when the run overlaps its rounds). */
  readonly accs: Map<string, RoundAccumulator>
  /**
   * The sum of the round closed last, which its close is done with, zeroed: the next round opened
   * sums in it rather than in a new model-sized buffer made while this one may not be collected
   * yet. Kept only until the engine's step is over (`releaseSpareSum`).
   */
  spareSum?: Float32Array
  /**
   * Screening state (when the run screens), one screen per round: sketches and reference values
   * of accepted reports. Two rounds take reports at once when the run overlaps them.
   */
  readonly screens: Map<string, { number: number, screen: ReportScreen }>
  /** Held-out scoring loss of the base weights, per base checkpoint. */
  scoringBase?: { sha: string, loss: number }
  /** sha256 of the shard of scoring windows handed to scoring nodes, once stored. */
  scoringWindows?: string
}

export interface RunCacheDeps {
  db: Kysely<Database>
  blobs: BlobStore
  log: Logger
  /** The largest model whose reports the coordinator scores itself (default SCORING_MAX_PARAMS). */
  scoreMaxParams?: number
  /** Where validation losses too costly for the event loop go; none: every loss is measured inline. */
  evaluation?: BackgroundEvaluation
  /** The most FLOPs a validation loss may cost on the event loop (default INLINE_EVAL_FLOPS). */
  inlineEvalFlops?: number
  /** The most FLOPs scoring one report may cost on the event loop (default INLINE_SCORE_FLOPS); apart from inlineEvalFlops. */
  inlineScoreFlops?: number
}

/**
 * Per-run state shared by the round engine and report intake: the resolved spec, the current
 * base weights, the validation tokens and the open round's running sum. The cache is the only
 * writer of that state; the engine tells it what happened (a round opened, closed or was
 * dropped) and it keeps base and sum consistent with the rows.
 */
export class RunCache {
  readonly #d: RunCacheDeps
  readonly #loaded = new Map<string, LoadedRun>()

  constructor (deps: RunCacheDeps) {
    this.#d = deps
  }

  /**
   * Whether the coordinator scores this run's reports itself (else nodes do, when it screens):
   * a model up to `--score-max-params` whose three forward passes fit the event loop's budget.
   */
  async scoresItself (runId: string): Promise<boolean> {
    return await this.#scorer(runId) === 'coordinator'
  }

  /**
   * Whether nodes score this run's reports when it screens (not when it costs them too much:
   * run-plan.ts's scorer). Never in overlapped runs: their nodes go from unit to unit without
   * asking for other work, so their reports are screened without held-out scores (or doubled).
   */
  async nodesScore (runId: string): Promise<boolean> {
    return await this.#scorer(runId) === 'nodes' && overlapOf((await this.#load(runId)).spec) === 'none'
  }

  async #scorer (runId: string): Promise<'coordinator' | 'nodes' | 'none'> {
    return scorer((await this.#load(runId)).spec, this.#d.scoreMaxParams ?? SCORING_MAX_PARAMS, this.#d.inlineScoreFlops ?? INLINE_SCORE_FLOPS)
  }

  /**
   * The scoring windows as a shard blob for scoring tasks: all windows as one batch, row after
   * row (the same mean loss `scoringLoss` takes), stored once per run. Scorers get these few
   * windows, not the validation shard.
   */
  async scoringWindowsBlob (runId: string): Promise<{ sha256: string, batchSize: number, seqLen: number }> {
    const loaded = await this.#load(runId)
    const w = scoringWindows(loaded.spec)
    if (loaded.scoringWindows === undefined) {
      loaded.validation ??= decodeShard(await this.#d.blobs.get(loaded.spec.validationShard.sha256)).tokens
      const tokens: number[] = []
      for (const start of validationWindowStarts(loaded.validation.length, w)) {
        for (let t = 0; t <= w.seqLen; t++) tokens.push(loaded.validation[start + t]!)
      }
      loaded.scoringWindows = await storeBlob(this.#d.db, this.#d.blobs, encodeShard(tokens, loaded.spec.vocabSize), 'shard', { tokens: tokens.length, vocabSize: loaded.spec.vocabSize, runId, split: 'scoring windows' })
    }
    return { sha256: loaded.scoringWindows, ...scoringTaskShape(loaded.spec) }
  }

  /** Drops a run's cached state (after it failed). */
  forget (runId: string): void {
    this.#loaded.delete(runId)
  }

  /** The run's resolved spec. */
  async spec (runId: string): Promise<StoredRunSpec> {
    return (await this.#load(runId)).spec
  }

  /** The weights of checkpoint `sha`, kept while it is the run's base. */
  async base (runId: string, sha: string): Promise<Float32Array> {
    const loaded = await this.#load(runId)
    if (loaded.base?.sha !== sha) {
      loaded.base = { sha, flat: checkpointWeights(loaded.spec.modelConfig, await this.#d.blobs.get(sha)) }
    }
    return loaded.base.flat
  }

  /**
   * The weights of checkpoint `sha` for a round's close to take its outer step on in place: the
   * cache lets go of them (a copy was a model more at every close), and has them again from
   * `advanceBase` as the next base; asked for meanwhile (a close that failed), it reads the
   * checkpoint again.
   */
  async takeBase (runId: string, sha: string): Promise<Float32Array> {
    const flat = await this.base(runId, sha)
    const loaded = await this.#load(runId)
    loaded.base = undefined
    return flat
  }

  /** The open round's running sum, rebuilt from accepted reports on disk after a restart. */
  async accumulator (runId: string, roundId: string): Promise<RoundAccumulator> {
    const loaded = await this.#load(runId)
    const held = loaded.accs.get(roundId)
    if (held !== undefined) return held
    const acc = new RoundAccumulator(roundId, loaded.spec.paramCount, keepsReports(defencesOf(loaded.spec)))
    let reports = 0
    for await (const r of this.#acceptedReports(loaded.spec, roundId)) {
      acc.fold(r.delta, r.tokens, r.finalLoss)
      reports++
    }
    loaded.accs.set(roundId, acc)
    if (reports > 0) this.#d.log.info('round sum rebuilt from disk', { roundId, reports })
    return acc
  }

  /**
   * Round `number`'s report screen: the round before's carried on (its accepted reports become
   * the direction and replay history), or after a restart rebuilt from the stored sketches of
   * earlier rounds' accepted reports and this round's accepted reports. In an overlapped run
   * the round before may still take reports: those reach this screen through `admitted`.
   */
  async screen (runId: string, roundId: string, number: number): Promise<ReportScreen> {
    const loaded = await this.#load(runId)
    const own = loaded.screens.get(roundId)
    if (own !== undefined) return own.screen
    const before = [...loaded.screens.values()].filter((s) => s.number < number).sort((a, b) => b.number - a.number)[0]
    let screen: ReportScreen
    if (before !== undefined) {
      screen = before.screen.fork(number)
      // In an overlapped run the round before still takes reports: the direction is the newest
      // closed round's, whole, not the part of the open one's accepted so far.
      const closed = [...loaded.screens.entries()].filter(([id, s]) => s.number < number && !loaded.accs.has(id)).sort((a, b) => b[1].number - a[1].number)[0]
      if (closed !== undefined && closed[1] !== before) screen.followDirection(closed[1].screen)
      await this.#orientFirstRound(runId, roundId, number, screen)
    } else {
      screen = new ReportScreen()
      screen.openRound(number)
      screen.restore(await this.#storedSketches(runId, number))
      await this.#orientFirstRound(runId, roundId, number, screen)
      for await (const r of this.#acceptedReports(loaded.spec, roundId)) {
        screen.admit(screen.check({ id: roundId, unit: r.unit, delta: r.delta, tokens: r.tokens }))
      }
    }
    loaded.screens.set(roundId, { number, screen })
    // A round two behind this one takes no more reports (at most two rounds are open at once).
    for (const [id, s] of loaded.screens) if (s.number < number - 1) loaded.screens.delete(id)
    return screen
  }

  /**
   * Round `number` accepted a report whose screening verdict was `verdict`: screens of later
   * rounds already open (overlapped runs) learn of it for their replay checks.
   */
  admitted (runId: string, number: number, verdict: { sketch: DeltaSketch }): void {
    const loaded = this.#loaded.get(runId)
    if (loaded === undefined) return
    for (const s of loaded.screens.values()) if (s.number > number) s.screen.rememberEarlier(number, [verdict.sketch])
  }

  /** The latest stored sketches of reports accepted before round `number`, oldest first (see the `sketch` column). */
  async #storedSketches (runId: string, number: number): Promise<Array<{ round: number, sketch: DeltaSketch }>> {
    const rows = await this.#d.db.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .select(['rounds.number', 'assignments.sketch'])
      .where('assignments.run_id', '=', runId).where('assignments.status', '=', 'accepted')
      .where('assignments.sketch', 'is not', null).where('rounds.number', '<', number)
      .orderBy('assignments.resolved_at', 'desc').limit(DEFAULT_SCREENING.earlierKept).execute()
    const out: Array<{ round: number, sketch: DeltaSketch }> = []
    for (const r of rows.reverse()) {
      const sketch = sketchFromBytes(r.sketch!)
      if (sketch !== null) out.push({ round: r.number, sketch })
    }
    if (out.length > 0) this.#d.log.info('screening history restored', { runId, round: number, sketches: out.length })
    return out
  }

  /**
   * Round 1 has no earlier round to give the direction training goes: the loss gradient at the
   * initial weights on the scoring windows stands in (measured on the demo corpus, honest
   * round-1 reports agree with it at cosine 0.11–0.23, flipped ones at the negatives of that).
   * Only for models the coordinator scores itself, and only for round 1: later, the previous
   * round's reports are the better reference.
   */
  async #orientFirstRound (runId: string, roundId: string, number: number, screen: ReportScreen): Promise<void> {
    const loaded = await this.#load(runId)
    if (number !== 1 || !await this.scoresItself(runId)) return
    const round = await this.#d.db.selectFrom('rounds').select('base_checkpoint').where('id', '=', roundId).executeTakeFirstOrThrow()
    const base = await this.base(runId, round.base_checkpoint)
    loaded.validation ??= decodeShard(await this.#d.blobs.get(loaded.spec.validationShard.sha256)).tokens
    screen.orient(sketchDelta(validationGradient(createParamSet(loaded.spec.modelConfig, base), loaded.validation, scoringWindows(loaded.spec))))
  }

  /** Loss on the run's scoring windows of the base weights `sha` minus `delta` (plus it, for `reversed`), or of the base itself. */
  async scoringLoss (runId: string, sha: string, delta?: Float32Array, reversed = false): Promise<number> {
    const loaded = await this.#load(runId)
    const base = await this.base(runId, sha)
    loaded.validation ??= decodeShard(await this.#d.blobs.get(loaded.spec.validationShard.sha256)).tokens
    const windows = scoringWindows(loaded.spec)
    if (delta === undefined) {
      if (loaded.scoringBase?.sha !== sha) loaded.scoringBase = { sha, loss: validationLoss(createParamSet(loaded.spec.modelConfig, base), loaded.validation, windows) }
      return loaded.scoringBase.loss
    }
    const moved = new Float32Array(base.length)
    const sign = reversed ? 1 : -1
    for (let i = 0; i < moved.length; i++) moved[i] = base[i]! + sign * delta[i]!
    return validationLoss(createParamSet(loaded.spec.modelConfig, moved), loaded.validation, windows)
  }

  /** The open round's accepted reports as stored until it closes. */
  async * #acceptedReports (spec: StoredRunSpec, roundId: string): AsyncGenerator<{ unit: string, delta: Float32Array, tokens: number, finalLoss: number | undefined }> {
    const accepted = await this.#d.db.selectFrom('assignments')
      .innerJoin('ledger', (j) => j.onRef('ledger.assignment_id', '=', 'assignments.id').on('ledger.outcome', '=', 'accepted'))
      .select(['assignments.id', 'assignments.twin_of', 'assignments.report_blob', 'ledger.tokens', 'ledger.metadata'])
      .where('assignments.round_id', '=', roundId).where('assignments.status', '=', 'accepted')
      // The order they were folded in the first time (float sums depend on it): the same sum, the same checkpoint.
      .orderBy('ledger.seq').execute()
    for (const a of accepted) {
      const signed = a.metadata === null ? undefined : parseReportMetadata(a.metadata)
      // Each report in the codec it was signed in (a run may allow several); rows without metadata predate that.
      const delta = decodePseudoGradient(signed?.codec ?? spec.codec, await this.#d.blobs.get(a.report_blob!), spec.paramCount)
      yield { unit: a.twin_of ?? a.id, delta, tokens: a.tokens, finalLoss: signed?.lossCurve.at(-1) }
    }
  }

  /**
   * Held-out loss of `flat` on the run's fixed evaluation windows; null when it is not finite;
   * undefined when it costs too much for the event loop (then `validateLater` its checkpoint).
   */
  async validationLoss (runId: string, flat: Float32Array): Promise<number | null | undefined> {
    const loaded = await this.#load(runId)
    if (this.#d.evaluation !== undefined && evaluationFlops(loaded.spec) > (this.#d.inlineEvalFlops ?? INLINE_EVAL_FLOPS)) return undefined
    loaded.validation ??= decodeShard(await this.#d.blobs.get(loaded.spec.validationShard.sha256)).tokens
    return storedLoss(validationLoss(createParamSet(loaded.spec.modelConfig, flat), loaded.validation, evaluationWindows(loaded.spec)))
  }

  /**
   * After a restart: each run's newest checkpoint still without a loss goes back to the worker
   * thread where its loss is too costly for the event loop (what was waiting was lost with the
   * process). Runs measured inline are left alone: there no loss means a diverged model.
   */
  async resumeValidation (): Promise<void> {
    if (this.#d.evaluation === undefined) return
    const rows = await this.#d.db.selectFrom('checkpoints').innerJoin('runs', 'runs.id', 'checkpoints.run_id')
      .select(['checkpoints.run_id', 'checkpoints.sha256', 'checkpoints.val_loss'])
      .where('runs.status', 'in', ['running', 'completed'])
      .where('checkpoints.pruned_at', 'is', null)
      .where(({ eb, selectFrom }) => eb('checkpoints.round', '=', selectFrom('checkpoints as newer').select((n) => n.fn.max('newer.round').as('r')).whereRef('newer.run_id', '=', 'checkpoints.run_id')))
      .execute()
    for (const row of rows) {
      if (row.val_loss !== null) continue
      const spec = await this.spec(row.run_id)
      if (evaluationFlops(spec) > (this.#d.inlineEvalFlops ?? INLINE_EVAL_FLOPS)) await this.validateLater(row.run_id, row.sha256)
    }
  }

  /** Has checkpoint `sha` of the run (its row written) measured on a worker thread, its loss written when known. */
  async validateLater (runId: string, sha: string): Promise<void> {
    const evaluation = this.#d.evaluation
    if (evaluation === undefined) return
    const loaded = await this.#load(runId)
    loaded.validation ??= decodeShard(await this.#d.blobs.get(loaded.spec.validationShard.sha256)).tokens
    const w = evaluationWindows(loaded.spec)
    evaluation.schedule({ runId, sha, config: loaded.spec.modelConfig, batches: validationBatches(loaded.validation, w), batchSize: w.batchSize, seqLen: w.seqLen })
  }

  /**
   * A round was opened: its running sum starts empty, in the spent sum of the round closed last
   * where there is one (`advanceBase`), else in a new buffer.
   */
  async openRound (runId: string, roundId: string, number: number): Promise<void> {
    const loaded = await this.#load(runId)
    const spare = loaded.spareSum
    loaded.spareSum = undefined
    const acc = new RoundAccumulator(roundId, loaded.spec.paramCount, keepsReports(defencesOf(loaded.spec)), spare === undefined ? {} : { sum: spare })
    loaded.accs.set(roundId, acc)
    // In the background: reports fold into it meanwhile as they would anyway. A spent sum's memory is mapped in already.
    if (spare === undefined) void acc.prefault()
    if (defencesOf(loaded.spec).screening) await this.screen(runId, roundId, number)
  }

  /**
   * Round `roundId` closed into checkpoint `sha`: those weights are the next base, and its sum is
   * done. Called once the close is done with the values applied (in the spent sum's memory): the
   * update and the momentum stored, the outer step taken, the checkpoint written. The spent sum
   * is zeroed, a slice at a time, and kept for the next round opened (`openRound`) until
   * `releaseSpareSum`; zeroed here, under the run's lock, so no report can fold into it first.
   */
  async advanceBase (runId: string, roundId: string, sha: string, flat: Float32Array): Promise<void> {
    const loaded = await this.#load(runId)
    loaded.base = { sha, flat }
    const acc = loaded.accs.get(roundId)
    loaded.accs.delete(roundId)
    // A later round already open (overlapped runs) now screens against this one's accepted reports.
    const closed = loaded.screens.get(roundId)
    if (closed !== undefined) for (const s of loaded.screens.values()) if (s.number > closed.number) s.screen.followDirection(closed.screen)
    if (acc?.spent === true) {
      await zeroInSlices(acc.sum)
      loaded.spareSum = acc.sum
    }
  }

  /**
   * Lets go of the spent sum no round was opened in (the engine's step is over): a run waiting
   * for nodes holds no sum, as before a round opened. The next round then makes a new one.
   */
  releaseSpareSum (runId: string): void {
    const loaded = this.#loaded.get(runId)
    if (loaded !== undefined) loaded.spareSum = undefined
  }

  /** Round `roundId` was abandoned with nothing accepted: its sum goes, the base stays. */
  dropRound (runId: string, roundId: string): void {
    this.#loaded.get(runId)?.accs.delete(roundId)
  }

  async #load (runId: string): Promise<LoadedRun> {
    let loaded = this.#loaded.get(runId)
    if (loaded === undefined) {
      const row = await this.#d.db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirstOrThrow()
      loaded = { spec: row.spec, accs: new Map(), screens: new Map() }
      this.#loaded.set(runId, loaded)
    }
    return loaded
  }
}

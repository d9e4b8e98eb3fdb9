import { sql } from 'kysely'
import type { Kysely, Transaction } from 'kysely'
import { PseudoGradientError, allowedCodecs, canonicalReportMetadataText, decodePseudoGradient, encodedByteLength, scanPseudoGradient, verifyReportSignature } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import type { HardwareProfile, ReportHeader, ReportResponse, UnitDecline } from '@barnraise/protocol'
import type { AssignmentStatus, Database, HeldReport } from '../db/schema.ts'
import { sha256HexInSlices } from '../blobs/blob-store.ts'
import type { ComputedSha256 } from '../blobs/blob-store.ts'
import { recordUpload } from '../nodes/upload-rate.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { BlobPins } from '../blobs/blob-pins.ts'
import type { Logger } from '../log.ts'
import type { ChangeFeed } from '../events/change-feed.ts'
import type { ReportSink } from '../p2p/report-service.ts'
import { appendLedgerEntry } from '../ledger/ledger.ts'
import { creditRow, deviceFloor, loadDeviceFloor } from '../ledger/device-credit.ts'
import type { RowCredit } from '../ledger/device-credit.ts'
import { COMPUTE_SLACK_SECONDS, claimComputeTime } from '../ledger/compute-time.ts'
import { deviceKindOf } from '../ledger/device-hours.ts'
import type { NewLedgerEntry } from '../ledger/ledger.ts'
import { l2Norm } from './accumulator.ts'
import type { RunLocks } from './run-lock.ts'
import type { RunCache } from './run-cache.ts'
import { ReportRefusal, refuseNamed, refuseScored, refuseSpent } from './report-refusal.ts'
import { RefusalLimiter } from './refusal-limiter.ts'
import { CROSS_CLASS_NORM_RATIO, CROSS_CLASS_TOLERANCE, compareDeltas, deviceClass, twinTolerance } from './redundancy.ts'
import { ReportScreen, sketchToBytes } from '@barnraise/trainer'
import type { ScreenVerdict } from '@barnraise/trainer'
import { defencesOf, unitInnerSteps } from '../runs/run-plan.ts'
import type { NodeScoring } from './node-scoring.ts'
import { FLAG_CODES, quarantineIfWarranted } from '../nodes/reputation.ts'

type Refusal = { ok: false, code: string, message: string }

export interface ReportIntakeOptions {
  db: Kysely<Database>
  blobs: BlobStore
  /** Report bytes being stored, kept from the spent-report sweep until their rows commit (shared with the round engine). */
  pins: BlobPins
  cache: RunCache
  locks: RunLocks
  changes: ChangeFeed
  log: Logger
  /** A report whose ||Δ|| exceeds this multiple of max(1, ||θ||) is refused as implausible. */
  normBoundRatio: number
  /** Called after a report is accepted, so the round can close at quorum right away. */
  onAccepted: (runId: string) => void
  /** How fast one peer may be refused; the default allows a burst of 20, then one per 3 s. */
  refusals?: RefusalLimiter
  /** Scoring tasks for reports of models too large for the coordinator to score (rounds/node-scoring.ts). */
  scoring?: NodeScoring
  /** Told every verdict (for /metrics): its outcome and, for a refusal, its code. */
  onVerdict?: (outcome: 'accepted' | 'held' | 'refused', code: string | null) => void
}

/**
 * Checks reports and folds the good ones into their round's running sum. Every verdict,
 * accepted or refused, is a ledger row (when the run exists).
 */
export class ReportIntake implements ReportSink {
  readonly #o: Omit<ReportIntakeOptions, 'cache' | 'locks' | 'onAccepted'>
  readonly #cache: RunCache
  readonly #locks: RunLocks
  readonly #onAccepted: (runId: string) => void
  readonly #refusals: RefusalLimiter
  readonly #baseNorms = new Map<string, number>()

  constructor (options: ReportIntakeOptions) {
    this.#o = options
    this.#cache = options.cache
    this.#locks = options.locks
    this.#onAccepted = options.onAccepted
    this.#refusals = options.refusals ?? new RefusalLimiter()
  }

  /**
   * A node hands back its open unit because its executor cannot train it: the unit becomes
   * refused (its tokens go out again next round, and the round need not wait for it) and the
   * node's reason is a ledger row. Returns false when the unit is not this node's open one.
   */
  async decline (peerId: string, d: UnitDecline): Promise<boolean> {
    const { db } = this.#o
    const a = await db.selectFrom('assignments')
      .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .innerJoin('nodes', 'nodes.id', 'assignments.node_id')
      .select(['assignments.id', 'assignments.run_id', 'rounds.number', 'nodes.id as node_id', 'nodes.organization_id'])
      .where('assignments.id', '=', d.assignmentId).where('nodes.peer_id', '=', peerId)
      .where('assignments.status', '=', 'assigned').where('rounds.status', '=', 'open')
      .executeTakeFirst()
    if (a === undefined) return false
    const declined = await db.transaction().execute(async (trx) => {
      const updated = await trx.updateTable('assignments').set({ status: 'refused', resolved_at: new Date() })
        .where('id', '=', a.id).where('status', '=', 'assigned').executeTakeFirst()
      if (Number(updated.numUpdatedRows) === 0) return false
      await appendLedgerEntry(trx, {
        runId: a.run_id, round: a.number, nodeId: a.node_id, peerId, organizationId: a.organization_id, assignmentId: a.id,
        tokens: 0, computeSeconds: 0, outcome: 'refused', reason: `ERR_DECLINED: the node declined the unit (${d.code}): ${d.message}`,
        metadata: null, signature: null, executor: null
      })
      return true
    })
    if (!declined) return false
    this.#o.log.warn('work unit declined', { peerId, runId: a.run_id, round: a.number, code: d.code, reason: d.message })
    this.#o.changes.publish('ledger', a.run_id)
    this.#o.changes.publish('runs', a.run_id)
    return true
  }

  /** Header checks: identity, signature, assignment, round, codec and size. A refusal is on the ledger before it is returned. */
  async admit (peerId: string, header: ReportHeader): Promise<{ ok: true, payloadBytes: number } | Refusal> {
    if (this.#refusals.exhausted(peerId)) {
      this.#o.onVerdict?.('refused', 'ERR_RATE_LIMITED')
      return { ok: false, code: 'ERR_RATE_LIMITED', message: 'too many refused reports from this node; wait a minute before sending more' }
    }
    try {
      await this.#checkHeader(peerId, header)
      return { ok: true, payloadBytes: header.metadata.payloadBytes }
    } catch (err) {
      if (!(err instanceof ReportRefusal)) throw err
      await this.#recordRefusal(peerId, header, err)
      this.#o.onVerdict?.('refused', err.code)
      return { ok: false, code: err.code, message: err.message }
    }
  }

  /**
   * Whether an upload of `sha256` for `assignmentId` can still be answered as it would have been
   * when admitted: its round is open, and the unit still out, or already accepted or held with
   * these bytes (a retry after a lost reply, answered "accepted" again).
   */
  async stillWanted (assignmentId: string, sha256: string): Promise<boolean> {
    const a = await this.#o.db.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .select(['assignments.status', 'assignments.report_blob', 'rounds.status as round_status']).where('assignments.id', '=', assignmentId).executeTakeFirst()
    if (a === undefined || a.round_status !== 'open') return false
    return a.status === 'assigned' || ((a.status === 'accepted' || a.status === 'held') && a.report_blob === sha256)
  }

  /** Payload checks, then accept (commit, fold) or refuse; both leave a ledger row. */
  async settle (peerId: string, header: ReportHeader, payload: Uint8Array, uploadSeconds?: number): Promise<ReportResponse> {
    const m = header.metadata
    // The link is measured whatever the verdict: the bytes crossed it either way.
    if (uploadSeconds !== undefined) {
      await recordUpload(this.#o.db, peerId, payload.byteLength, uploadSeconds)
        .catch((err: unknown) => { this.#o.log.error('recording a report upload\'s rate failed', { peerId, runId: m.runId, err }) })
    }
    // The report is in: its node's turnaround ends here, whenever its verdict comes (rounds/unit-sizing.ts).
    // The database's clock, as the unit's hand-out: turnaround is their difference.
    await this.#o.db.updateTable('assignments').set({ reported_at: sql<Date>`clock_timestamp()` })
      .where('id', '=', m.assignmentId).where('status', '=', 'assigned')
      .where('node_id', '=', (eb) => eb.selectFrom('nodes').select('id').where('peer_id', '=', peerId)).execute()
    const result = await this.#locks.with(m.runId, async (): Promise<ReportResponse> => {
      // Pinned until its row has committed, so the sweep of a spent copy cannot delete its file.
      const release = await this.#o.pins.pin(m.payloadSha256)
      try {
        return await this.#accept(peerId, header, payload)
      } catch (err) {
        if (!(err instanceof ReportRefusal)) throw err
        await this.#recordRefusal(peerId, header, err)
        return { ok: false, outcome: 'refused', code: err.code, message: err.message }
      } finally {
        release()
      }
    })
    // Close at quorum right away rather than at the next tick.
    if (result.ok && !result.duplicate) this.#onAccepted(m.runId)
    if (!(result.ok && result.duplicate)) this.#o.onVerdict?.(result.ok ? result.outcome : 'refused', result.ok ? null : result.code)
    return result
  }

  /** Throws the header's ReportRefusal; returns when the payload may be read (a retry of the accepted report included). */
  async #checkHeader (peerId: string, header: ReportHeader): Promise<void> {
    const { db } = this.#o
    const m = header.metadata
    if (m.peerId !== peerId) throw new ReportRefusal('ERR_BAD_SIGNATURE', 'the report names another peer than the one sending it')
    const a = await db.selectFrom('assignments')
      .innerJoin('nodes', 'nodes.id', 'assignments.node_id')
      .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .select(['assignments.id', 'assignments.status', 'assignments.run_id', 'assignments.tokens', 'assignments.inner_steps', 'assignments.codec', 'assignments.report_blob', 'assignments.twin_of', 'assignments.created_at', 'nodes.peer_id', 'rounds.number', 'rounds.status as round_status'])
      .where('assignments.id', '=', m.assignmentId).executeTakeFirst()
    // Not this node's unit: refused without a ledger row, so strangers cannot grow a run's ledger.
    if (a === undefined || a.peer_id !== peerId || a.run_id !== m.runId || a.number !== m.round) {
      throw new ReportRefusal('ERR_UNASSIGNED', 'this node was not given that work unit in that round')
    }
    if (!await verifyReportSignature(peerId, canonicalReportMetadataText(m), header.signature)) {
      throw refuseNamed(a.id, 'ERR_BAD_SIGNATURE', 'the signature over the report metadata does not verify')
    }
    if (a.status === 'accepted' || a.status === 'held') {
      // A retry of the accepted (or held) report while its round is open is answered as before
      // (the agent may have lost our reply); after the round closed it is a replay.
      if (a.report_blob === m.payloadSha256 && a.round_status === 'open') {
        // The retry's bytes are read (and its size allocated) before the answer, so its size
        // must be the stored report's: a signed header may claim any size.
        const stored = await db.selectFrom('blobs').select('size').where('sha256', '=', a.report_blob).executeTakeFirst()
        if (stored === undefined || Number(stored.size) !== m.payloadBytes) {
          throw refuseNamed(a.id, 'ERR_WRONG_SHAPE', `a retry of the accepted report must announce its ${stored === undefined ? 'stored' : Number(stored.size)} bytes, not ${m.payloadBytes}`)
        }
        return
      }
      if (a.report_blob === m.payloadSha256) throw refuseNamed(a.id, 'ERR_REPLAY', `this report was already accepted in round ${a.number}; it is not counted twice`)
      throw refuseNamed(a.id, 'ERR_DUPLICATE', 'a different report for this work unit was already accepted')
    }
    if (a.status === 'refused') throw refuseNamed(a.id, 'ERR_DUPLICATE', 'a report for this work unit was already refused')
    if (a.round_status !== 'open' || a.status === 'expired') throw refuseNamed(a.id, 'ERR_STALE', `round ${a.number} closed before this report arrived`)
    // A report is a node's own training: bytes the coordinator already keeps as something else
    // (a round's published update, which nodes download to rebuild their base) are a copy, and
    // would share that file's single row, so retiring the update would delete them under it.
    const stored = await db.selectFrom('blobs').select('kind').where('sha256', '=', m.payloadSha256).executeTakeFirst()
    if (stored !== undefined && stored.kind !== 'report') {
      throw refuseSpent(a.id, 'ERR_REPLAY', `these bytes are the coordinator's own ${stored.kind === 'update' ? 'round update' : `${stored.kind} file`}, not this unit's training`)
    }
    // Nor the bytes of another unit's report in this run, accepted or held (a round's update
    // lists its accepted reports, which nodes download; scorers download held ones): without
    // screening nothing else would tell. Its file may be gone with its round, its row not: one
    // lookup on assignments' report_blob index. A twin answers the same unit, so its bytes may be
    // its original's; a report refused after it was held stands for nothing.
    const copied = await db.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id').select('rounds.number')
      .where('assignments.report_blob', '=', m.payloadSha256).where('assignments.run_id', '=', a.run_id).where('assignments.id', '!=', a.id)
      .where('assignments.status', 'in', ['accepted', 'held'])
      .$if(a.twin_of !== null, (q) => q.where('assignments.id', '!=', a.twin_of!))
      .where((eb) => eb.or([eb('assignments.twin_of', 'is', null), eb('assignments.twin_of', '!=', a.id)]))
      .limit(1).executeTakeFirst()
    if (copied !== undefined) {
      throw refuseSpent(a.id, 'ERR_REPLAY', `these bytes are another work unit's report (round ${copied.number} of this run), not this unit's training; it is not counted twice`)
    }
    const spec = await this.#cache.spec(a.run_id)
    const allowed = allowedCodecs(spec)
    if (!allowed.includes(m.codec)) throw refuseSpent(a.id, 'ERR_WRONG_SHAPE', `the run uses codec ${allowed.join(' or ')}, not ${m.codec}`)
    // Within what the run allows, the coordinator chose this unit's codec from the node's link.
    const assigned = a.codec ?? spec.codec
    if (m.codec !== assigned) throw refuseSpent(a.id, 'ERR_WRONG_SHAPE', `this unit was handed out in codec ${assigned}, not ${m.codec}`)
    // Doubled units are compared by what trained them; a report that does not say would choose
    // the looser check for itself. Every unit of such a run asks it, so none is singled out.
    if (m.executor === undefined && defencesOf(spec).redundancy > 0) {
      throw refuseSpent(a.id, 'ERR_WRONG_SHAPE', 'this run checks doubled units against each other, so a report must name its executor (the signed v2 form); update the agent')
    }
    // From here on the signed codec is the unit's: every later decode of this report uses it.
    const expected = encodedByteLength(m.codec, spec.paramCount)
    if (m.payloadBytes !== expected) {
      const what = m.payloadBytes > expected ? 'oversized payload' : 'payload too small'
      throw refuseSpent(a.id, 'ERR_WRONG_SHAPE', `${what}: ${m.payloadBytes} bytes announced, the model needs exactly ${expected}`)
    }
    // Credit follows the assignment: a unit cannot train more tokens than it was handed, nor
    // for longer than it has existed, nor in time the node's other units already claimed.
    const maxTokens = Math.min(unitInnerSteps(spec, a.inner_steps) * spec.recipe.batchSize * spec.recipe.seqLen, a.tokens)
    if (m.tokens > maxTokens || m.tokens <= 0) throw refuseSpent(a.id, 'ERR_BAD_REPORT', `claims ${m.tokens} tokens; this unit trains 1 to ${maxTokens}`)
    // At most one loss a step (agents sample long curves down; protocol/src/loss-curve.ts).
    const steps = unitInnerSteps(spec, a.inner_steps)
    if (m.lossCurve.length > steps) throw refuseSpent(a.id, 'ERR_BAD_REPORT', `its loss curve has ${m.lossCurve.length} points; this unit trains ${steps} steps`)
    // Last of the header's checks: a claim that fits takes its place on the node's timeline now
    // (ledger/compute-time.ts). One that does not is refused, not clamped: the seconds are
    // signed and the ledger row must say what the node signed, and an honest agent never claims
    // more than its inner loop's wall-clock time, which always fits.
    const placed = await claimComputeTime(db, a.id, m.computeSeconds)
    if (!placed.ok) {
      const since = Math.max(0, Math.round(placed.availableSeconds))
      throw refuseSpent(a.id, 'ERR_BAD_REPORT', placed.boundBy === 'hand-out'
        ? `claims ${m.computeSeconds} s of compute; this unit was handed out ${since} s ago`
        : `claims ${m.computeSeconds} s of compute; this node's earlier reports account for its time until ${since} s ago, so this unit can have trained at most ${since} s (plus ${COMPUTE_SLACK_SECONDS} s of slack)`)
    }
  }

  /** Under the run's lock: checks the payload, then commits and folds it; throws its ReportRefusal. */
  async #accept (peerId: string, header: ReportHeader, payload: Uint8Array): Promise<ReportResponse> {
    const { db } = this.#o
    const m = header.metadata
    const a = await db.selectFrom('assignments').innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .select(['assignments.id', 'assignments.status', 'assignments.report_blob', 'assignments.twin_of', 'assignments.inner_steps', 'rounds.status as round_status', 'rounds.id as round_id', 'rounds.base_checkpoint'])
      .where('assignments.id', '=', m.assignmentId).executeTakeFirstOrThrow()
    if ((a.status === 'accepted' || a.status === 'held') && a.report_blob === m.payloadSha256) return { ok: true, outcome: a.status, duplicate: true }
    if (a.status !== 'assigned' || a.round_status !== 'open') throw refuseNamed(a.id, 'ERR_STALE', 'the round closed while the report was uploading')
    // In slices: a 1B model's int8 report is about 1 GB, a second of hashing the event loop need not hold.
    const sha = await sha256HexInSlices(payload)
    if (sha !== m.payloadSha256) throw refuseSpent(a.id, 'ERR_BAD_PAYLOAD', 'payload does not match the signed sha256')
    const spec = await this.#cache.spec(m.runId)
    // Scanning refuses non-finite values (ERR_NON_FINITE) as well as malformed bytes, without a
    // decoded copy; the report is decoded only where a check needs it whole.
    let norm: number
    try {
      norm = scanPseudoGradient(m.codec, payload, spec.paramCount).norm
    } catch (err) {
      const nonFinite = err instanceof PseudoGradientError && err.code === 'ERR_NON_FINITE'
      throw refuseSpent(a.id, nonFinite ? 'ERR_NOT_FINITE' : 'ERR_BAD_PAYLOAD', (err as Error).message)
    }
    let decoded: Float32Array | null = null
    const deltaOf = (): Float32Array => { decoded ??= decodePseudoGradient(m.codec, payload, spec.paramCount); return decoded }
    if (norm === 0) throw refuseSpent(a.id, 'ERR_EMPTY_DELTA', 'the pseudo-gradient is all zeros: the unit trained nothing, and earns nothing')
    const bound = this.#o.normBoundRatio * Math.max(1, await this.#baseNorm(m.runId, a.base_checkpoint))
    if (norm > bound) throw refuseSpent(a.id, 'ERR_NORM_BOUND', `pseudo-gradient norm ${norm.toFixed(3)} exceeds the bound ${bound.toFixed(3)}`)
    const node = await this.#node(peerId)
    if (node === undefined) throw new Error(`node ${peerId} holds an assignment but has no row`)
    const screened = await this.#screen(m, a, deltaOf, node.quarantine_reason !== null)
    if (node.quarantine_reason !== null) throw quarantinedRefusal(a.id, node.quarantine_reason, screened?.verdict.score ?? null)
    const score = screened?.verdict.score ?? null
    const twin = await this.#twin(a.id, a.twin_of)
    // Where nodes score the run (not overlapped runs, nor where scoring costs more than nodes are
    // asked to spend on it: RunCache.nodesScore), and this unit has no twin: its round doubles
    // units only when too few scorers were online at its opening (round-engine.ts).
    if (screened?.screen != null && this.#o.scoring !== undefined && twin === null && await this.#cache.nodesScore(m.runId)) {
      // Too large for the coordinator to score: held until two other nodes have scored it.
      await db.transaction().execute(async (trx) => {
        await this.#storeReport(trx, a.id, payload, sha)
        await trx.updateTable('assignments').set({ status: 'held', report_blob: sha, held_report: JSON.stringify({ header, score: null, awaitingScores: true }), sketch: sketchBytes(screened) }).where('id', '=', a.id).execute()
      })
      const scorers = await this.#o.scoring.open(m.runId, a.round_id, a.id, node.id)
      if (scorers === 0) {
        // Nobody else can score it now: judged unscored at once, and answered with that verdict.
        const judged = await this.finishScoring(a.id, true)
        if (judged !== null && !judged.ok) return judged
        return { ok: true, outcome: 'accepted', duplicate: false }
      }
      this.#o.log.info('report held for scoring', { peerId, runId: m.runId, round: m.round, scorers })
      return { ok: true, outcome: 'held', duplicate: false }
    }
    if (twin?.status === 'assigned') {
      // The first of a pair to report waits for the second, checked but neither folded nor credited.
      await db.transaction().execute(async (trx) => {
        await this.#storeReport(trx, a.id, payload, sha)
        await trx.updateTable('assignments').set({ status: 'held', report_blob: sha, held_report: JSON.stringify({ header, score }), sketch: sketchBytes(screened) }).where('id', '=', a.id).execute()
      })
      if (screened?.screen != null) this.#admit(m.runId, m.round, screened.screen, screened.verdict)
      this.#o.log.info('report held for its twin', { peerId, runId: m.runId, round: m.round, twin: twin.id })
      return { ok: true, outcome: 'held', duplicate: false }
    }
    // A twin trains its original's steps (a throughput-sized unit's, not the run's), and the two drift apart with each.
    if (twin?.status === 'held') await this.#compareTwins(spec, unitInnerSteps(spec, a.inner_steps), { id: a.id, peerId, header, delta: deltaOf() }, twin)
    await this.#commitAccepted({ id: a.id, roundId: a.round_id, peerId, header, node, delta: decoded ?? { codec: m.codec, payload }, score, blob: sha, sketch: sketchBytes(screened) }, { bytes: payload, sha256: sha })
    if (screened?.screen != null) this.#admit(m.runId, m.round, screened.screen, screened.verdict)
    return { ok: true, outcome: 'accepted', duplicate: false }
  }

  /**
   * A report held for node scoring is judged (under the run's lock) once its scorers answered,
   * or at the round's close on what they answered: screened with their mean losses, then
   * accepted or refused like any other. Scorers that disagree leave it judged without scores.
   */
  async finishScoring (assignmentId: string, atArrival = false): Promise<ReportResponse | null> {
    const { db } = this.#o
    const h = await db.selectFrom('assignments').innerJoin('nodes', 'nodes.id', 'assignments.node_id')
      .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .select(['assignments.status', 'assignments.run_id', 'assignments.round_id', 'assignments.report_blob', 'assignments.held_report', 'rounds.number', 'rounds.status as round_status', 'nodes.id as node_id', 'nodes.organization_id', 'nodes.peer_id'])
      .where('assignments.id', '=', assignmentId).executeTakeFirst()
    // A round that ended meanwhile (its run failed) credits nothing more.
    if (h === undefined || h.status !== 'held' || h.held_report?.awaitingScores !== true || h.round_status !== 'open') return null
    const spec = await this.#cache.spec(h.run_id)
    const header = h.held_report.header
    const delta = decodePseudoGradient(header.metadata.codec, await this.#o.blobs.get(h.report_blob!), spec.paramCount)
    const losses = this.#o.scoring === undefined ? { heldOut: undefined, scorers: 0, disagreement: null } : await this.#o.scoring.losses(assignmentId)
    if (losses.disagreement !== null) this.#o.log.warn('scorers disagree', { runId: h.run_id, assignmentId, detail: losses.disagreement })
    const screen = await this.#cache.screen(h.run_id, h.round_id, h.number)
    const verdict = screen.check({ id: assignmentId, delta, tokens: header.metadata.tokens, claimedLoss: header.metadata.lossCurve.at(-1) }, losses.heldOut)
    if (verdict.exclusion !== null) {
      const refusal = refuseScored(assignmentId, verdict.exclusion.code, `${verdict.exclusion.message} (scored by ${losses.scorers} other node${losses.scorers === 1 ? '' : 's'})`, verdict.score)
      await this.#recordRefusal(h.peer_id, header, refusal)
      // At arrival the caller answers the node and counts the verdict; later it is counted here.
      if (!atArrival) this.#o.onVerdict?.('refused', refusal.code)
      return { ok: false, outcome: 'refused', code: refusal.code, message: refusal.message }
    }
    const quarantined = await this.#quarantineOf(h.node_id)
    if (quarantined !== null) {
      const refusal = quarantinedRefusal(assignmentId, quarantined, verdict.score)
      await this.#recordRefusal(h.peer_id, header, refusal)
      if (!atArrival) this.#o.onVerdict?.('refused', refusal.code)
      return { ok: false, outcome: 'refused', code: refusal.code, message: refusal.message }
    }
    await this.#commitAccepted({ id: assignmentId, roundId: h.round_id, peerId: h.peer_id, header, node: { id: h.node_id, organization_id: h.organization_id }, delta, score: verdict.score, blob: h.report_blob!, countVerdict: !atArrival })
    this.#admit(h.run_id, h.number, screen, verdict)
    if (!atArrival) this.#onAccepted(h.run_id)
    return { ok: true, outcome: 'accepted', duplicate: false }
  }

  /** An accepted report becomes reference for its round's screen, and replay history for a later round's already open. */
  #admit (runId: string, round: number, screen: ReportScreen, verdict: ScreenVerdict): void {
    screen.admit(verdict)
    this.#cache.admitted(runId, round, verdict)
  }

  /** Keeps a report's payload (until its round closes) with its blob row. */
  async #storeReport (trx: Transaction<Database>, assignmentId: string, payload: Uint8Array, sha: ComputedSha256): Promise<void> {
    // Hashed once, on arrival: a 1B model's int8 report is about 1 GB.
    await this.#o.blobs.put(payload, sha)
    await trx.insertInto('blobs').values({ sha256: sha, size: payload.byteLength, kind: 'report', meta: JSON.stringify({ assignmentId }) })
      .onConflict((oc) => oc.column('sha256').doNothing()).execute()
  }

  /**
   * Accepts a checked report: its payload (unless a held report's is stored already), the unit,
   * the round's tokens and the ledger row in one transaction, then the fold.
   */
  async #commitAccepted (r: { id: string, roundId: string, peerId: string, header: ReportHeader, node: { id: string, organization_id: string }, delta: Float32Array | { codec: CodecName, payload: Uint8Array }, score: number | null, blob: string, sketch?: Buffer | null, countVerdict?: boolean }, payload?: { bytes: Uint8Array, sha256: ComputedSha256 }): Promise<void> {
    const m = r.header.metadata
    const acc = await this.#cache.accumulator(m.runId, r.roundId)
    // Checked before the commit, so a report is never credited without being folded.
    if (acc.spent) throw new Error(`round ${m.round}'s sum was already spent on its close`)
    // Judged now, from the profile the node has now: a later re-join changes neither.
    const hardware = (await this.#o.db.selectFrom('nodes').select('hardware').where('id', '=', r.node.id).executeTakeFirst())?.hardware
    const { devices: credited, cores } = await this.#credit(m, hardware)
    await this.#o.db.transaction().execute(async (trx) => {
      if (payload !== undefined) await this.#storeReport(trx, r.id, payload.bytes, payload.sha256)
      await trx.updateTable('assignments').set({ status: 'accepted', report_blob: r.blob, held_report: null, resolved_at: new Date(), ...(r.sketch != null ? { sketch: r.sketch } : {}) }).where('id', '=', r.id).execute()
      await trx.updateTable('rounds').set((eb) => ({ tokens: eb('tokens', '+', m.tokens) })).where('id', '=', r.roundId).execute()
      await appendLedgerEntry(trx, verdictEntry(r.peerId, r.header, r.node, { outcome: 'accepted', assignmentId: r.id, score: r.score, creditedDevices: credited, creditedCores: cores }))
    })
    if (r.delta instanceof Float32Array) acc.fold(r.delta, m.tokens, m.lossCurve.at(-1))
    else await acc.foldEncodedInSlices(r.delta.codec, r.delta.payload, m.tokens, m.lossCurve.at(-1))
    // A held report's later acceptance is a verdict of its own (its arrival was counted as held).
    if (payload === undefined && r.countVerdict !== false) this.#o.onVerdict?.('accepted', null)
    this.#o.log.info('report accepted', { peerId: r.peerId, runId: m.runId, round: m.round, tokens: m.tokens, score: r.score ?? undefined })
    this.#o.changes.publish('ledger', m.runId)
  }

  /**
   * What an accepted report is credited (ledger/device-credit.ts's creditRow): whether it is GPU
   * time (only if its throughput shows at least one device at the run's floor), how many of the
   * devices it names (as far as its throughput shows them, no more than the GPUs the node lists
   * now), and for CPU time how many cores. Fixed now, from the profile the node has today, so a
   * later re-join with another profile leaves this row's hours and their kind as they are.
   */
  async #credit (m: ReportHeader['metadata'], hardware: HardwareProfile | undefined): Promise<RowCredit> {
    const spec = await this.#cache.spec(m.runId)
    const kind = deviceKindOf(hardware, m.executor)
    const devices = m.devices ?? null
    // The floor is read only where it decides something: GPU time, or a device count.
    const floor = kind === 'gpu' || devices !== null ? await loadDeviceFloor(this.#o.db, m.runId, spec.paramCount) : deviceFloor([], spec.paramCount)
    const credit = creditRow({ kind, devices, listedGpus: hardware?.gpus.length ?? 0, cpuCores: hardware?.cpuCores ?? 1, tokens: m.tokens, computeSeconds: m.computeSeconds, paramCount: spec.paramCount }, floor)
    const rate = { tokensPerSecond: Math.round(m.tokens / m.computeSeconds), floorPerDevice: Math.round(floor.tokensPerSecond), gpuTimeFloor: Math.round(floor.gpuTime), floorFrom: floor.source }
    if (kind === 'gpu' && credit.cores > 0) {
      this.#o.log.warn('GPU time not shown by throughput: counted as one CPU core', { runId: m.runId, round: m.round, peerId: m.peerId, ...rate })
    } else if (kind === 'gpu' && devices !== null && credit.devices !== null && credit.devices < devices) {
      this.#o.log.warn('device count not shown by throughput', { runId: m.runId, round: m.round, peerId: m.peerId, claimed: devices, credited: credit.devices, ...rate })
    } else if (kind === 'cpu' && credit.cores < (hardware?.cpuCores ?? 1)) {
      this.#o.log.info('core count not shown by throughput', { runId: m.runId, round: m.round, peerId: m.peerId, claimed: hardware?.cpuCores ?? 1, credited: credit.cores })
    }
    return credit
  }

  /** The other unit of a redundant pair (whichever of the two this is), or null. */
  async #twin (assignmentId: string, twinOf: string | null): Promise<HeldTwin | null> {
    const row = await this.#o.db.selectFrom('assignments').innerJoin('nodes', 'nodes.id', 'assignments.node_id')
      .select(['assignments.id', 'assignments.status', 'assignments.report_blob', 'assignments.held_report', 'assignments.round_id', 'nodes.id as node_id', 'nodes.organization_id', 'nodes.peer_id', 'nodes.hardware'])
      .where((eb) => twinOf !== null ? eb('assignments.id', '=', twinOf) : eb('assignments.twin_of', '=', assignmentId))
      .executeTakeFirst()
    return row ?? null
  }

  /**
   * The second report of a pair meets the held first. Where both trained with the same executor
   * on the same class of device their deltas must agree within the tolerance the self-test's
   * error bound allows over the `innerSteps` they trained (rounds/redundancy.ts): if not, both
   * are refused and flagged, since either could be the liar, and this throws. Otherwise the
   * held one is accepted now.
   */
  async #compareTwins (spec: { paramCount: number }, innerSteps: number, mine: { id: string, peerId: string, header: ReportHeader, delta: Float32Array }, twin: HeldTwin): Promise<void> {
    const held = twin.held_report!
    // Its node quarantined while it was held: not folded, and this one is accepted alone.
    if (await this.#refuseIfQuarantined(twin.id, twin.round_id, twin.node_id, twin.peer_id, held.header, held.score)) return
    // A twin is handed out in its original's codec, so the two differ only if one was refused for it.
    const codec = mine.header.metadata.codec
    const theirs = decodePseudoGradient(held.header.metadata.codec, await this.#o.blobs.get(twin.report_blob!), spec.paramCount)
    const myNode = await this.#o.db.selectFrom('nodes').select('hardware').where('peer_id', '=', mine.peerId).executeTakeFirstOrThrow()
    const mineClass = deviceClass(mine.header.metadata.executor, myNode.hardware)
    const theirClass = deviceClass(held.header.metadata.executor, twin.hardware)
    const comparable = mineClass !== null && mineClass === theirClass
    const { distance, sizes } = compareDeltas(mine.delta, theirs)
    // Different classes still must point the same way, at about the same size: the class is each
    // node's own claim, so "not comparable" must not mean "not checked". Never stricter than the
    // same-class bound, which grows with the inner steps.
    const tolerance = comparable ? twinTolerance(innerSteps, codec) : Math.max(CROSS_CLASS_TOLERANCE, twinTolerance(innerSteps, codec))
    const sizeOff = !comparable && sizes < CROSS_CLASS_NORM_RATIO
    if (!(distance <= tolerance) || sizeOff) {
      const devices = comparable ? `on the same class of device (${mineClass})` : `on another class of device (${mineClass ?? 'unnamed'} and ${theirClass ?? 'unnamed'}: their direction and size must agree)`
      const how = sizeOff
        ? `one pseudo-gradient is ${(100 * sizes).toFixed(1)}% the size of the other (at least ${(100 * CROSS_CLASS_NORM_RATIO).toFixed(0)}% allowed)`
        : `the two pseudo-gradients differ by ${(100 * distance).toFixed(2)}% (at most ${(100 * tolerance).toFixed(2)}% allowed)`
      const message = (other: string): string => `this unit was also trained by ${other} from the same data, seed and recipe ${devices}, and ${how}: both are held for review and earn nothing`
      await this.#recordRefusal(twin.peer_id, held.header, refuseScored(twin.id, 'ERR_REDUNDANCY_MISMATCH', message(`node ${mine.peerId}`), held.score))
      await this.#retract(held.header.metadata, twin.round_id)
      this.#o.onVerdict?.('refused', 'ERR_REDUNDANCY_MISMATCH')
      throw refuseScored(mine.id, 'ERR_REDUNDANCY_MISMATCH', message(`node ${twin.peer_id}`), null)
    }
    this.#o.log.info('redundant pair compared', { runId: mine.header.metadata.runId, units: [twin.id, mine.id], comparable, distance, tolerance, sizes })
    await this.#commitAccepted({ id: twin.id, roundId: twin.round_id, peerId: twin.peer_id, header: held.header, node: { id: twin.node_id, organization_id: twin.organization_id }, delta: theirs, score: held.score, blob: twin.report_blob! })
  }

  /** Why the node is quarantined now, or null: a report held for its twin or scorers is judged later than it came. */
  async #quarantineOf (nodeId: string): Promise<string | null> {
    const row = await this.#o.db.selectFrom('nodes').select('quarantine_reason').where('id', '=', nodeId).executeTakeFirst()
    return row?.quarantine_reason ?? null
  }

  /**
   * Refuses a held report (ERR_QUARANTINED) whose node was quarantined after it arrived: it is
   * neither folded nor credited, as it would not have been on arrival. True when it did.
   */
  async #refuseIfQuarantined (assignmentId: string, roundId: string, nodeId: string, peerId: string, header: ReportHeader, score: number | null): Promise<boolean> {
    const reason = await this.#quarantineOf(nodeId)
    if (reason === null) return false
    const refusal = quarantinedRefusal(assignmentId, reason, score)
    await this.#recordRefusal(peerId, header, refusal)
    await this.#retract(header.metadata, roundId)
    this.#o.onVerdict?.('refused', refusal.code)
    return true
  }

  /**
   * A held report refused after all: the screen took it as reference when it was held (for its
   * twin), and must not keep it. Both twins answer one unit: the original's id.
   */
  async #retract (m: ReportHeader['metadata'], roundId: string): Promise<void> {
    if (!defencesOf(await this.#cache.spec(m.runId)).screening) return
    const row = await this.#o.db.selectFrom('assignments').select('twin_of').where('id', '=', m.assignmentId).executeTakeFirst()
    const screen = await this.#cache.screen(m.runId, roundId, m.round)
    screen.retract(row?.twin_of ?? m.assignmentId)
  }

  /**
   * Before a round closes (under the run's lock): each held report whose twin was refused, or
   * never reported, has nothing to be compared with and is accepted alone.
   */
  async settleHeld (runId: string, roundId: string): Promise<void> {
    const spec = await this.#cache.spec(runId)
    const held = await this.#o.db.selectFrom('assignments').innerJoin('nodes', 'nodes.id', 'assignments.node_id')
      .select(['assignments.id', 'assignments.report_blob', 'assignments.held_report', 'nodes.id as node_id', 'nodes.organization_id', 'nodes.peer_id'])
      .where('assignments.round_id', '=', roundId).where('assignments.status', '=', 'held').execute()
    for (const h of held) {
      // Waiting for scores that will not all come: judged on those that did (or none).
      if (h.held_report?.awaitingScores === true) { await this.finishScoring(h.id); continue }
      if (await this.#refuseIfQuarantined(h.id, roundId, h.node_id, h.peer_id, h.held_report!.header, h.held_report!.score)) continue
      const delta = decodePseudoGradient(h.held_report!.header.metadata.codec, await this.#o.blobs.get(h.report_blob!), spec.paramCount)
      await this.#commitAccepted({ id: h.id, roundId, peerId: h.peer_id, header: h.held_report!.header, node: { id: h.node_id, organization_id: h.organization_id }, delta, score: h.held_report!.score, blob: h.report_blob! })
    }
  }

  /**
   * ‖θ‖ of a base checkpoint, computed once per checkpoint (a whole pass over the model) rather
   * than per report; the checkpoint is loaded only then. Overlapped runs have two rounds open on
   * two bases, and the run cache holds one: loading θ for every report would read and decode the
   * whole checkpoint on alternate reports.
   */
  async #baseNorm (runId: string, sha: string): Promise<number> {
    let norm = this.#baseNorms.get(sha)
    if (norm === undefined) {
      const theta = await this.#cache.base(runId, sha)
      if (this.#baseNorms.size >= 64) this.#baseNorms.clear()
      norm = l2Norm(theta)
      this.#baseNorms.set(sha, norm)
    }
    return norm
  }

  /**
   * When the run screens reports: this report's verdict against what was accepted before it
   * (scored on held-out data when the model is small enough for the coordinator to do it).
   * Throws the exclusion as a refusal that spends the unit (with its score); returns what to
   * record once the report is committed, or null when the run does not screen. A quarantined
   * node's report is scored even where the run does not screen, so its reviewer sees how it
   * behaves now.
   */
  async #screen (m: ReportHeader['metadata'], a: { id: string, twin_of: string | null, round_id: string, base_checkpoint: string }, deltaOf: () => Float32Array, quarantined: boolean): Promise<{ screen: ReportScreen | null, verdict: ScreenVerdict } | null> {
    const spec = await this.#cache.spec(m.runId)
    const screening = defencesOf(spec).screening
    if (!screening && !quarantined) return null
    const delta = deltaOf()
    const heldOut = await this.#cache.scoresItself(m.runId)
      ? {
          base: await this.#cache.scoringLoss(m.runId, a.base_checkpoint),
          after: await this.#cache.scoringLoss(m.runId, a.base_checkpoint, delta),
          reversed: await this.#cache.scoringLoss(m.runId, a.base_checkpoint, delta, true)
        }
      : undefined
    // A twin answers its original's unit: the two are the same bytes by design, not a copy.
    const report = { id: a.id, unit: a.twin_of ?? a.id, delta, tokens: m.tokens, claimedLoss: m.lossCurve.at(-1) }
    if (!screening) {
      // Scored only: a fresh screen has no reference, so it names no exclusion beyond "uphill".
      return { screen: null, verdict: new ReportScreen().check(report, heldOut) }
    }
    const screen = await this.#cache.screen(m.runId, a.round_id, m.round)
    const verdict = screen.check(report, heldOut)
    if (verdict.exclusion !== null) throw refuseScored(a.id, verdict.exclusion.code, verdict.exclusion.message, verdict.score)
    return { screen, verdict }
  }

  /**
   * Counts the refusal against the peer, and writes its ledger row only when it is about a unit
   * this enrolled node was assigned (so an unenrolled peer cannot grow a run's ledger); a spent
   * unit is refused in the same transaction.
   */
  async #recordRefusal (peerId: string, header: ReportHeader, refusal: ReportRefusal): Promise<void> {
    const { db } = this.#o
    const m = header.metadata
    this.#refusals.spend(peerId)
    this.#o.log.warn('report refused', { peerId, runId: m.runId, round: m.round, code: refusal.code, reason: refusal.message })
    if (refusal.assignmentId === null) return
    const node = await this.#node(peerId)
    if (node === undefined) return
    // A refusal about a unit already settled (a replay, a duplicate, a report after its round)
    // changes nothing, and anyone enrolled can send them all day: the ledger keeps the first of
    // each code for a unit, and none once the run is over (its last signed head would not cover them).
    if (refusal.unit.kind === 'named' && !await this.#firstOfItsKind(m.runId, refusal.unit.assignmentId, refusal.code)) return
    const quarantined = await db.transaction().execute(async (trx) => {
      if (refusal.unit.kind === 'spent') {
        await trx.updateTable('assignments').set({ status: 'refused', held_report: null, resolved_at: new Date() })
          .where('id', '=', refusal.unit.assignmentId).where('status', 'in', ['assigned', 'held']).execute()
      }
      await appendLedgerEntry(trx, verdictEntry(peerId, header, node, { outcome: 'refused', refusal }))
      return FLAG_CODES.has(refusal.code) ? await quarantineIfWarranted(trx, node.id) : null
    })
    if (quarantined !== null) {
      this.#o.log.warn('node quarantined', { peerId, nodeId: node.id, reason: quarantined })
      this.#o.changes.publish('nodes')
    }
    this.#o.changes.publish('ledger', m.runId)
  }

  /** Whether a refusal naming a settled unit is worth a ledger row: its run still open, and no row with its code for that unit yet. */
  async #firstOfItsKind (runId: string, assignmentId: string, code: string): Promise<boolean> {
    const run = await this.#o.db.selectFrom('runs').select('status').where('id', '=', runId).executeTakeFirst()
    if (run === undefined || run.status === 'completed' || run.status === 'failed') return false
    const seen = await this.#o.db.selectFrom('ledger').select('seq')
      .where('assignment_id', '=', assignmentId).where('outcome', '=', 'refused').where(sql<string>`split_part(reason, ':', 1)`, '=', code)
      .limit(1).executeTakeFirst()
    return seen === undefined
  }

  async #node (peerId: string): Promise<{ id: string, organization_id: string, quarantine_reason: string | null } | undefined> {
    const node = await this.#o.db.selectFrom('nodes').select(['id', 'organization_id', 'quarantined_at', 'quarantine_reason']).where('peer_id', '=', peerId).executeTakeFirst()
    if (node === undefined) return undefined
    return { id: node.id, organization_id: node.organization_id, quarantine_reason: node.quarantined_at === null ? null : node.quarantine_reason ?? 'quarantined' }
  }
}

/** The other unit of a redundant pair, with what its held report needs to be settled. */
interface HeldTwin {
  id: string
  status: AssignmentStatus
  report_blob: string | null
  held_report: HeldReport | null
  round_id: string
  node_id: string
  organization_id: string
  peer_id: string
  hardware: HardwareProfile
}

type Verdict = { outcome: 'accepted', assignmentId: string, score: number | null, creditedDevices: number | null, creditedCores: number | null } | { outcome: 'refused', refusal: ReportRefusal }

/**
 * The ledger row for a report's verdict. An accepted row carries the signed metadata and
 * signature (anyone can re-verify it) and the claimed tokens and seconds; a refused row
 * carries the reason and counts nothing.
 */
function verdictEntry (peerId: string, header: ReportHeader, node: { id: string, organization_id: string } | undefined, verdict: Verdict): NewLedgerEntry {
  const m = header.metadata
  const who = { runId: m.runId, round: m.round, nodeId: node?.id ?? null, peerId, organizationId: node?.organization_id ?? null, executor: m.executor ?? null, devices: m.devices ?? null }
  if (verdict.outcome === 'accepted') {
    return {
      ...who, assignmentId: verdict.assignmentId, tokens: m.tokens, computeSeconds: m.computeSeconds, outcome: 'accepted', reason: null,
      metadata: canonicalReportMetadataText(m), signature: header.signature, score: finiteOrNull(verdict.score), creditedDevices: verdict.creditedDevices,
      creditedCores: verdict.creditedCores
    }
  }
  const { refusal } = verdict
  return {
    ...who, assignmentId: refusal.assignmentId, tokens: 0, computeSeconds: 0, outcome: 'refused', reason: `${refusal.code}: ${refusal.message}`,
    metadata: null, signature: null, score: finiteOrNull(refusal.score)
  }
}

/** The screened report's sketch as stored (runs that screen keep it for replay checks after a restart). */
function sketchBytes (screened: { screen: ReportScreen | null, verdict: ScreenVerdict } | null): Buffer | null {
  return screened?.screen == null ? null : Buffer.from(sketchToBytes(screened.verdict.sketch))
}

/** Scores go on the ledger only when finite (a report that diverges the model scores -Infinity: its reason says so). */
function finiteOrNull (score: number | null): number | null {
  return score !== null && Number.isFinite(score) ? score : null
}

/** The refusal of a quarantined node's report: scored (for its reviewer), never folded or credited. */
function quarantinedRefusal (assignmentId: string, reason: string, score: number | null): ReportRefusal {
  return refuseScored(assignmentId, 'ERR_QUARANTINED', `this node is quarantined (${reason}); its reports are scored${score === null ? '' : ` (this one: ${score.toFixed(4)})`} but not folded or credited until its lab admin or an organizer reviews it on the Nodes page`, score)
}

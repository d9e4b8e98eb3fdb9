import type { Kysely } from 'kysely'
import { PseudoGradientError, canonicalReportMetadata, verifyReportSignature } from '@barnraise/protocol'
import type { ReportHeader, ReportResponse, UnitDecline } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import { sha256Hex } from '../blobs/blob-store.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { Logger } from '../log.ts'
import type { ChangeFeed } from '../events/change-feed.ts'
import type { ReportSink } from '../p2p/report-service.ts'
import { appendLedgerEntry } from '../ledger/ledger.ts'
import { l2Norm } from './accumulator.ts'
import type { RunLocks } from './run-lock.ts'
import type { RunCache } from './run-cache.ts'
import type { ModelOps } from '../runs/model-ops.ts'

type Refusal = { ok: false, code: string, message: string }

export interface ReportIntakeOptions {
  db: Kysely<Database>
  blobs: BlobStore
  ops: ModelOps
  cache: RunCache
  locks: RunLocks
  changes: ChangeFeed
  log: Logger
  /** A report whose ||Δ|| exceeds this multiple of max(1, ||θ||) is refused as implausible. */
  normBoundRatio: number
  /** Called after a report is accepted, so the round can close at quorum right away. */
  onAccepted: (runId: string) => void
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

  constructor (options: ReportIntakeOptions) {
    this.#o = options
    this.#cache = options.cache
    this.#locks = options.locks
    this.#onAccepted = options.onAccepted
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
          assignmentId, tokens: 0, computeSeconds: 0, outcome: 'refused', reason: `${code}: ${message}`, metadata: null, signature: null,
          executor: m.executor ?? null
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
    const spec = (await this.#cache.load(a.run_id)).spec
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
      const sha = sha256Hex(payload)
      if (sha !== m.payloadSha256) return await refuse('ERR_BAD_PAYLOAD', 'payload does not match the signed sha256')
      const loaded = await this.#cache.load(m.runId)
      let delta: Float32Array
      // Decoding refuses non-finite values (ERR_NON_FINITE) as well as malformed bytes.
      try {
        delta = this.#o.ops.decode(loaded.spec.codec, payload, loaded.spec.paramCount)
      } catch (err) {
        const nonFinite = err instanceof PseudoGradientError && err.code === 'ERR_NON_FINITE'
        return await refuse(nonFinite ? 'ERR_NOT_FINITE' : 'ERR_BAD_PAYLOAD', (err as Error).message)
      }
      const theta = await this.#cache.base(loaded, a.base_checkpoint)
      const norm = l2Norm(delta)
      const bound = this.#o.normBoundRatio * Math.max(1, l2Norm(theta))
      if (norm > bound) return await refuse('ERR_NORM_BOUND', `pseudo-gradient norm ${norm.toFixed(3)} exceeds the bound ${bound.toFixed(3)}`)
      const acc = await this.#cache.accumulator(loaded, a.round_id)
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
          tokens: m.tokens, computeSeconds: m.computeSeconds, outcome: 'accepted', reason: null, metadata: metadataText, signature: header.signature,
          executor: m.executor ?? null
        })
      })
      acc.fold(delta, m.tokens, m.lossCurve.at(-1))
      this.#o.log.info('report accepted', { peerId, runId: m.runId, round: m.round, tokens: m.tokens, norm })
      this.#o.changes.publish('ledger', m.runId)
      return { ok: true, outcome: 'accepted', duplicate: false }
    })
    // Close at quorum right away rather than at the next tick.
    if (result.ok && !result.duplicate) this.#onAccepted(m.runId)
    return result
  }
}

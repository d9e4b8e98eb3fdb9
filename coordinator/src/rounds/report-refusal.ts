import { CodedError } from '@barnraise/protocol'
import type { ExclusionCode } from '@barnraise/trainer'

/** Why report intake turned a report away; each is a ledger row's reason and the node's reply. */
export type ReportRefusalCode =
  | 'ERR_BAD_SIGNATURE'
  | 'ERR_UNASSIGNED'
  | 'ERR_REPLAY'
  | 'ERR_DUPLICATE'
  | 'ERR_STALE'
  | 'ERR_WRONG_SHAPE'
  | 'ERR_BAD_REPORT'
  | 'ERR_BAD_PAYLOAD'
  | 'ERR_NOT_FINITE'
  | 'ERR_NORM_BOUND'
  | 'ERR_EMPTY_DELTA'
  | 'ERR_RATE_LIMITED'
  | 'ERR_QUARANTINED'
  | 'ERR_REDUNDANCY_MISMATCH'
  | ExclusionCode

/**
 * The work unit a refusal is about. `spent`: the report was judged on its merits, so the unit
 * is refused (its tokens go out again and the round stops waiting for it). `named`: the unit
 * is recorded on the ledger row but left as it is (already resolved, or its round closed).
 */
export type RefusedUnit =
  | { kind: 'none' }
  | { kind: 'named', assignmentId: string }
  | { kind: 'spent', assignmentId: string }

/** A report turned away: its code, a message the node's operator can act on, and the unit it names. */
export class ReportRefusal extends CodedError<ReportRefusalCode> {
  readonly unit: RefusedUnit
  /** The loss the report removed on held-out data, when it was scored before being turned away. */
  readonly score: number | null

  constructor (code: ReportRefusalCode, message: string, unit: RefusedUnit = { kind: 'none' }, score: number | null = null) {
    super(code, message)
    this.unit = unit
    this.score = score
  }

  /** The assignment the ledger row names, if any. */
  get assignmentId (): string | null {
    return this.unit.kind === 'none' ? null : this.unit.assignmentId
  }
}

/** Refusals about a unit the report may not spend (already resolved, or its round is over). */
export function refuseNamed (assignmentId: string, code: ReportRefusalCode, message: string): ReportRefusal {
  return new ReportRefusal(code, message, { kind: 'named', assignmentId })
}

/** Refusals that spend the unit: the report was this unit's answer, and a bad one. */
export function refuseSpent (assignmentId: string, code: ReportRefusalCode, message: string): ReportRefusal {
  return new ReportRefusal(code, message, { kind: 'spent', assignmentId })
}

/** A refusal that spends the unit after the report was scored: the ledger row keeps its score. */
export function refuseScored (assignmentId: string, code: ReportRefusalCode, message: string, score: number | null): ReportRefusal {
  return new ReportRefusal(code, message, { kind: 'spent', assignmentId }, score !== null && Number.isFinite(score) ? score : null)
}

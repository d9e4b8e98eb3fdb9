// How much compute time a report may claim. A report signs how long its inner loop ran; its
// ledger row credits exactly that (verifyLedger checks the row against the signature), and
// device-hours multiply it. One unit alone bounds it by the time since the unit was handed out,
// but a node can hold several units at once (an overlapped run hands out the next round's unit
// with the current one; a lab's node serves several runs), and each could then claim all of that
// time. So a node's claims are laid end to end on one timeline: each report's compute is placed
// as early as its unit and the node's earlier claims allow, from max(unit handed out, the end of
// the node's claimed compute so far: `nodes.credited_until`), and must end by now (plus slack).
// An agent trains one unit after another, claims only its inner loop, and sends each report
// only after the previous one's upload is done (work-loop.ts), so its claims arrive in the order
// it trained them, and packed this way they end no later than its real training did: an honest
// node always fits. Claims are placed when the report's header is admitted, in one transaction that locks
// the node's row: two reports sent at once cannot both claim the same seconds, and a report
// held for its redundancy twin and accepted later keeps the place it got on arrival, so the
// order of acceptances does not matter. A unit's place is kept on the unit
// (`assignments.compute_from`, with the seconds claimed there), so a retry of a report whose
// upload failed is judged as before; a retry claiming more is placed afresh.
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'

/** Clock skew and scheduling slack allowed between a claim's earliest start and its end. */
export const COMPUTE_SLACK_SECONDS = 5

/** Where a claim was placed, or why it does not fit. */
export type ComputePlacement =
  | { ok: true, from: Date, until: Date }
  | { ok: false, from: Date, availableSeconds: number, boundBy: 'hand-out' | 'earlier claims' }

/**
 * Places `computeSeconds` on a node's timeline: from `placedFrom` when the unit already has a
 * place and the claim is no longer than the one placed there (a retry), else from
 * max(`handedOutAt`, `creditedUntil`). It fits when it ends by `now` plus the slack. A longer
 * re-claim is placed afresh: kept at its early place, a unit could first claim a moment, let
 * another unit claim the time after it, then come back claiming all of it.
 */
export function placeCompute (o: { handedOutAt: Date, creditedUntil: Date | null, placedFrom: Date | null, placedSeconds: number | null, computeSeconds: number, now: Date, slackSeconds?: number }): ComputePlacement {
  const slack = o.slackSeconds ?? COMPUTE_SLACK_SECONDS
  const kept = o.placedFrom !== null && o.placedSeconds !== null && o.computeSeconds <= o.placedSeconds
  const start = kept ? o.placedFrom! : new Date(Math.max(o.handedOutAt.getTime(), o.creditedUntil?.getTime() ?? -Infinity))
  const availableSeconds = (o.now.getTime() - start.getTime()) / 1000
  if (Number.isFinite(o.computeSeconds) && o.computeSeconds >= 0 && o.computeSeconds <= availableSeconds + slack) {
    return { ok: true, from: start, until: new Date(start.getTime() + o.computeSeconds * 1000) }
  }
  return { ok: false, from: start, availableSeconds, boundBy: start.getTime() > o.handedOutAt.getTime() ? 'earlier claims' : 'hand-out' }
}

/**
 * Places a report's claimed compute for unit `assignmentId` on its node's timeline, on the
 * database's clock (the one that stamped the unit's hand-out), and when it fits records the
 * place on the unit and moves the node's `credited_until` to its end. Nothing changes when it
 * does not fit.
 */
export async function claimComputeTime (db: Kysely<Database>, assignmentId: string, computeSeconds: number): Promise<ComputePlacement> {
  return await db.transaction().execute(async (trx) => {
    // The node first, then its unit: the order revoking a node takes them in (nodes/nodes.ts),
    // so a report and a revoke at once wait for each other instead of deadlocking.
    const { node_id: nodeId } = await trx.selectFrom('assignments').select('node_id').where('id', '=', assignmentId).executeTakeFirstOrThrow()
    const node = await trx.selectFrom('nodes').select('credited_until').where('id', '=', nodeId).forUpdate().executeTakeFirstOrThrow()
    const unit = await trx.selectFrom('assignments').select(['node_id', 'created_at', 'compute_from', 'compute_claimed_seconds']).where('id', '=', assignmentId).forUpdate().executeTakeFirstOrThrow()
    const { now } = (await sql<{ now: Date }>`select clock_timestamp() as now`.execute(trx)).rows[0]!
    const placed = placeCompute({ handedOutAt: unit.created_at, creditedUntil: node.credited_until, placedFrom: unit.compute_from, placedSeconds: unit.compute_claimed_seconds, computeSeconds, now })
    if (placed.ok) {
      if (unit.compute_from === null || placed.from.getTime() !== unit.compute_from.getTime() || computeSeconds > (unit.compute_claimed_seconds ?? 0)) {
        await trx.updateTable('assignments').set({ compute_from: placed.from, compute_claimed_seconds: computeSeconds }).where('id', '=', assignmentId).execute()
      }
      if (node.credited_until === null || placed.until > node.credited_until) {
        await trx.updateTable('nodes').set({ credited_until: placed.until }).where('id', '=', unit.node_id).execute()
      }
    }
    return placed
  })
}

// How many inner steps each node's unit gets when a run sizes units by throughput, so a round's
// units come back at about the same time from a fast GPU on a slow link and a laptop on fibre.
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'

/** A unit is at most this many times the run's inner steps, and at least its share: a node's claim moves its unit only so far. */
export const MAX_STEP_FACTOR = 4

/**
 * What a node's last units took: compute seconds per inner step (its claim), and the rest of
 * the time from handing a unit out to accepting its report (downloading the base and shards,
 * uploading the report: its link), per unit.
 */
export interface NodeTiming { secondsPerStep: number, overheadSeconds: number }

/**
 * Inner steps for each node so each unit comes back in about the time the median measured node
 * takes for the run's `innerSteps`: a node's time is its overhead plus steps × its seconds a step.
 * A node not measured yet gets the run's steps; every unit stays within innerSteps / MAX_STEP_FACTOR
 * and innerSteps × MAX_STEP_FACTOR (a node whose transfers alone outlast the round gets the least).
 */
export function stepsByTiming (innerSteps: number, timings: Array<NodeTiming | undefined>): number[] {
  const usable = (t: NodeTiming | undefined): t is NodeTiming => t !== undefined && Number.isFinite(t.secondsPerStep) && t.secondsPerStep > 0 && Number.isFinite(t.overheadSeconds) && t.overheadSeconds >= 0
  const at = timings.filter(usable).map((t) => t.overheadSeconds + innerSteps * t.secondsPerStep).sort((a, b) => a - b)
  if (at.length === 0) return timings.map(() => innerSteps)
  const mid = at.length >> 1
  const target = at.length % 2 === 1 ? at[mid]! : (at[mid - 1]! + at[mid]!) / 2
  const least = Math.max(1, Math.ceil(innerSteps / MAX_STEP_FACTOR))
  const most = innerSteps * MAX_STEP_FACTOR
  return timings.map((t) => {
    if (!usable(t)) return innerSteps
    return Math.min(most, Math.max(least, Math.round((target - t.overheadSeconds) / t.secondsPerStep)))
  })
}

/**
 * Each node's timing in this run from its accepted reports: its claimed compute seconds per step,
 * and the rest of each unit's turnaround (handed out → report accepted) as its overhead. With
 * `overlapped` the overhead is taken as none: transfers happen while the node trains, and a
 * unit's turnaround then includes the unit trained before it. A node that under-claims its
 * compute looks fast and gets up to MAX_STEP_FACTOR× the tokens and the weight that goes with
 * them; runs open to strangers should screen (docs/defences.md).
 */
export async function measuredTimings (db: Kysely<Database>, runId: string, nodeIds: string[], innerSteps: number, overlapped: boolean): Promise<Map<string, NodeTiming>> {
  if (nodeIds.length === 0) return new Map()
  const rows = await db.selectFrom('ledger')
    .innerJoin('assignments', 'assignments.id', 'ledger.assignment_id')
    .select(['ledger.node_id',
      sql<number>`sum(coalesce(assignments.inner_steps, ${innerSteps}))::float8`.as('steps'),
      sql<number>`sum(ledger.compute_seconds)::float8`.as('compute'),
      sql<number>`avg(greatest(0, extract(epoch from ledger.created_at - assignments.created_at) - ledger.compute_seconds))::float8`.as('overhead')])
    .where('ledger.run_id', '=', runId).where('ledger.outcome', '=', 'accepted').where('ledger.node_id', 'in', nodeIds)
    .groupBy('ledger.node_id').execute()
  const out = new Map<string, NodeTiming>()
  for (const r of rows) {
    if (r.node_id === null || !(Number(r.steps) > 0) || !(Number(r.compute) > 0)) continue
    out.set(r.node_id, { secondsPerStep: Number(r.compute) / Number(r.steps), overheadSeconds: overlapped ? 0 : Number(r.overhead) })
  }
  return out
}

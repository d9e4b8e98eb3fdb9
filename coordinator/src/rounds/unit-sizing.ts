// How many inner steps each node's unit gets when a run sizes units by throughput, so a round's
// units come back at about the same time from a fast GPU on a slow link and a laptop on fibre.
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import { MAX_UNIT_INNER_STEPS } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'

/** A unit is at most this many times the run's inner steps, and at least its share: a node's claim moves its unit only so far. */
export const MAX_STEP_FACTOR = 4

/**
 * The most inner steps a node's unit of a run with `innerSteps` may get: MAX_STEP_FACTOR× the
 * run's, and never more than a work unit may carry (an agent cannot even read, or decline, a
 * larger unit).
 */
export function mostSteps (innerSteps: number): number {
  return Math.min(MAX_UNIT_INNER_STEPS, innerSteps * MAX_STEP_FACTOR)
}

/**
 * What a node's last units took: compute seconds per inner step (its claim), and the rest of
 * the time from handing a unit out to receiving its report (downloading the base and shards,
 * uploading the report: its link), per unit. `lab` is its organization: the round's target is
 * the median over labs, so one lab's many nodes count once. `weight` is the inner steps its
 * accepted reports trained in the run: a lab counts toward the target by its nodes' weights
 * (a lab whose nodes have none counts as one).
 */
export interface NodeTiming { secondsPerStep: number, overheadSeconds: number, lab?: string, weight?: number }

/** The middle of a non-empty list of numbers (the mean of the middle two for an even count). */
function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * The value at half of the total weight: the plain median when all weights are equal (the mean
 * of the two values either side when half falls exactly between them).
 */
function weightedMedian (entries: Array<{ value: number, weight: number }>): number {
  const sorted = [...entries].sort((a, b) => a.value - b.value)
  const half = sorted.reduce((s, e) => s + e.weight, 0) / 2
  let below = 0
  for (const [i, e] of sorted.entries()) {
    below += e.weight
    if (below > half) return e.value
    if (below === half && i + 1 < sorted.length) return (e.value + sorted[i + 1]!.value) / 2
  }
  return sorted.at(-1)!.value
}

/**
 * Inner steps for each node so each unit comes back in about the time the median lab takes for
 * the run's `innerSteps`: a node's time is its overhead plus steps × its seconds a step, a lab's
 * the median of its measured nodes' (a node with no lab is a lab of its own), and the median
 * over labs weighs each by the steps its nodes trained in the run, so labs made to sway it (a
 * few sign-ups, each node claiming a speed) count for the work they did, not one lab each. A
 * node not measured yet gets the run's steps; every unit stays within innerSteps /
 * MAX_STEP_FACTOR and mostSteps (a node whose transfers alone outlast the round gets the least).
 */
export function stepsByTiming (innerSteps: number, timings: Array<NodeTiming | undefined>): number[] {
  const usable = (t: NodeTiming | undefined): t is NodeTiming => t !== undefined && Number.isFinite(t.secondsPerStep) && t.secondsPerStep > 0 && Number.isFinite(t.overheadSeconds) && t.overheadSeconds >= 0
  const labs = new Map<string, { times: number[], weight: number }>()
  for (const [i, t] of timings.entries()) {
    if (!usable(t)) continue
    const key = t.lab !== undefined ? `lab:${t.lab}` : `node:${i}`
    const lab = labs.get(key) ?? { times: [], weight: 0 }
    lab.times.push(t.overheadSeconds + innerSteps * t.secondsPerStep)
    if (t.weight !== undefined && Number.isFinite(t.weight) && t.weight > 0) lab.weight += t.weight
    labs.set(key, lab)
  }
  if (labs.size === 0) return timings.map(() => innerSteps)
  const target = weightedMedian([...labs.values()].map((l) => ({ value: median(l.times), weight: l.weight > 0 ? l.weight : 1 })))
  const least = Math.max(1, Math.ceil(innerSteps / MAX_STEP_FACTOR))
  const most = mostSteps(innerSteps)
  return timings.map((t) => {
    if (!usable(t)) return innerSteps
    return Math.min(most, Math.max(least, Math.round((target - t.overheadSeconds) / t.secondsPerStep)))
  })
}

/**
 * Each node's timing in this run from its accepted reports: its claimed compute seconds per step,
 * and the median of the rest of its units' turnarounds (handed out → its report's bytes in) as
 * its overhead. The turnaround ends when the report arrived, not at its verdict: a report held
 * for its twin or its scorers until the round closes says nothing about its node's link. Rows
 * from before `reported_at` existed end at their ledger row. With `overlapped` the overhead is
 * taken as none: transfers happen while the node trains, and a unit's turnaround then includes
 * the unit trained before it. A node that under-claims its compute looks fast and gets up to
 * MAX_STEP_FACTOR× the tokens and the weight that goes with them; runs open to strangers
 * should screen (docs/defences.md). A timing's weight is the steps its node trained in the run.
 */
export async function measuredTimings (db: Kysely<Database>, runId: string, nodeIds: string[], innerSteps: number, overlapped: boolean): Promise<Map<string, NodeTiming>> {
  if (nodeIds.length === 0) return new Map()
  const rows = await db.selectFrom('ledger')
    .innerJoin('assignments', 'assignments.id', 'ledger.assignment_id')
    .select(['ledger.node_id',
      sql<number>`sum(coalesce(assignments.inner_steps, ${innerSteps}))::float8`.as('steps'),
      sql<number>`sum(ledger.compute_seconds)::float8`.as('compute'),
      sql<number>`percentile_cont(0.5) within group (order by greatest(0, extract(epoch from coalesce(assignments.reported_at, ledger.created_at) - assignments.created_at) - ledger.compute_seconds))::float8`.as('overhead')])
    .where('ledger.run_id', '=', runId).where('ledger.outcome', '=', 'accepted').where('ledger.node_id', 'in', nodeIds)
    .groupBy('ledger.node_id').execute()
  const out = new Map<string, NodeTiming>()
  for (const r of rows) {
    if (r.node_id === null || !(Number(r.steps) > 0) || !(Number(r.compute) > 0)) continue
    out.set(r.node_id, { secondsPerStep: Number(r.compute) / Number(r.steps), overheadSeconds: overlapped ? 0 : Number(r.overhead), weight: Number(r.steps) })
  }
  return out
}

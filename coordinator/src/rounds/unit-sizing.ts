// How many inner steps each node's unit gets when a run sizes units by throughput, so a round's
// units finish at about the same time on a fast GPU and a laptop alike.
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'

/** A unit is at most this many times the run's inner steps, and at least its share: a node's claim moves its unit only so far. */
export const MAX_STEP_FACTOR = 4

/**
 * Inner steps for each node: the run's `innerSteps` scaled by the node's measured tokens a
 * second over the median of the nodes measured (a node not yet measured gets the median, so
 * the run's own steps), between innerSteps / MAX_STEP_FACTOR and innerSteps × MAX_STEP_FACTOR.
 */
export function stepsByThroughput (innerSteps: number, speeds: Array<number | undefined>): number[] {
  const known = speeds.filter((s): s is number => s !== undefined && Number.isFinite(s) && s > 0).sort((a, b) => a - b)
  if (known.length === 0) return speeds.map(() => innerSteps)
  const mid = known.length >> 1
  const median = known.length % 2 === 1 ? known[mid]! : (known[mid - 1]! + known[mid]!) / 2
  const least = Math.max(1, Math.ceil(innerSteps / MAX_STEP_FACTOR))
  const most = innerSteps * MAX_STEP_FACTOR
  return speeds.map((s) => {
    if (s === undefined || !Number.isFinite(s) || s <= 0) return innerSteps
    return Math.min(most, Math.max(least, Math.round(innerSteps * s / median)))
  })
}

/**
 * Each node's tokens a second in this run, from its accepted reports (tokens over the compute
 * seconds it claimed; the intake holds those claims to the time since the unit was handed out).
 */
export async function measuredSpeeds (db: Kysely<Database>, runId: string, nodeIds: string[]): Promise<Map<string, number>> {
  if (nodeIds.length === 0) return new Map()
  const rows = await db.selectFrom('ledger')
    .select(['node_id', sql<number>`sum(tokens)::float8`.as('tokens'), sql<number>`sum(compute_seconds)::float8`.as('seconds')])
    .where('run_id', '=', runId).where('outcome', '=', 'accepted').where('node_id', 'in', nodeIds)
    .groupBy('node_id').execute()
  const out = new Map<string, number>()
  for (const r of rows) if (r.node_id !== null && Number(r.seconds) > 0) out.set(r.node_id, Number(r.tokens) / Number(r.seconds))
  return out
}

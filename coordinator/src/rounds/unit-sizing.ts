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
 * Each node's tokens a second in this run, from its accepted reports: tokens over the longer of
 * the compute seconds it claimed and the time from handing its unit out to accepting its report,
 * so a claim can make a node look no faster than its reports actually came back. A node that
 * answers at once with anything still looks fast: up to MAX_STEP_FACTOR× the tokens, and the
 * weight in the mean that goes with them. Runs open to strangers should screen (docs/defences.md).
 */
export async function measuredSpeeds (db: Kysely<Database>, runId: string, nodeIds: string[]): Promise<Map<string, number>> {
  if (nodeIds.length === 0) return new Map()
  const rows = await db.selectFrom('ledger')
    .innerJoin('assignments', 'assignments.id', 'ledger.assignment_id')
    .select(['ledger.node_id', sql<number>`sum(ledger.tokens)::float8`.as('tokens'),
      sql<number>`sum(greatest(ledger.compute_seconds, extract(epoch from ledger.created_at - assignments.created_at)))::float8`.as('seconds')])
    .where('ledger.run_id', '=', runId).where('ledger.outcome', '=', 'accepted').where('ledger.node_id', 'in', nodeIds)
    .groupBy('ledger.node_id').execute()
  const out = new Map<string, number>()
  for (const r of rows) if (r.node_id !== null && Number(r.seconds) > 0) out.set(r.node_id, Number(r.tokens) / Number(r.seconds))
  return out
}

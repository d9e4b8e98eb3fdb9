// What a node needs to rebuild a round's base itself (protocol's roundUpdateSchema): the
// previous round's base and its accepted reports in the order they were folded.
import type { Kysely } from 'kysely'
import type { RoundUpdate } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import type { StoredRunSpec } from '../runs/runs.ts'

/**
 * The update that turned round `number − 1`'s base into round `number`'s, or undefined when a
 * node must download the base: the first round, or a report of the previous round is gone.
 */
export async function roundUpdate (db: Kysely<Database>, runId: string, number: number, spec: StoredRunSpec): Promise<RoundUpdate | undefined> {
  if (number < 2) return undefined
  const previous = await db.selectFrom('rounds').select(['id', 'base_checkpoint'])
    .where('run_id', '=', runId).where('number', '=', number - 1).where('status', '=', 'closed').executeTakeFirst()
  if (previous === undefined) return undefined
  const accepted = await db.selectFrom('assignments')
    .innerJoin('ledger', (j) => j.onRef('ledger.assignment_id', '=', 'assignments.id').on('ledger.outcome', '=', 'accepted'))
    .leftJoin('blobs', (j) => j.onRef('blobs.sha256', '=', 'assignments.report_blob').on('blobs.kind', '=', 'report'))
    .select(['assignments.report_blob', 'ledger.tokens', 'blobs.size'])
    .where('assignments.round_id', '=', previous.id).where('assignments.status', '=', 'accepted')
    // The order the coordinator folded them in (report-intake commits the ledger row, then folds, under the run's lock).
    .orderBy('ledger.seq').execute()
  // A partial list would rebuild a different base.
  if (accepted.length === 0 || accepted.some((r) => r.report_blob === null || r.size === null)) return undefined
  return {
    from: previous.base_checkpoint,
    reports: accepted.map((r) => ({ sha256: r.report_blob!, tokens: r.tokens, bytes: r.size! })),
    outerLr: spec.recipe.outerLr,
    outerMomentum: spec.recipe.outerMomentum
  }
}

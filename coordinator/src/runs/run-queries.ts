import type { Kysely } from 'kysely'
import type { Database, RunStatus } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import type { StoredRunSpec } from './runs.ts'
import { awaitedDatasetView } from '../datasets/dataset-library.ts'

/** One line of the runs list; the same nouns the dashboard and the HTTP API use. */
export interface RunSummary {
  id: string
  name: string
  status: RunStatus
  round: number
  tokensSeen: number
  tokenGoal: number | null
  roundsGoal: number | null
  latestValLoss: number | null
  paramCount: number
  createdAt: string
  updatedAt: string
  failureReason: string | null
}

function summarize (r: { id: string, name: string, status: RunStatus, current_round: number, tokens_seen: number, spec: StoredRunSpec, created_at: Date, updated_at: Date, failure_reason: string | null }, latestValLoss: number | null): RunSummary {
  const spec = r.spec
  return {
    id: r.id,
    name: r.name,
    status: r.status,
    round: r.current_round,
    tokensSeen: r.tokens_seen,
    tokenGoal: spec.tokenTarget ?? null,
    roundsGoal: spec.rounds ?? null,
    latestValLoss,
    paramCount: spec.paramCount,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    failureReason: r.failure_reason
  }
}

/** Runs, newest first, with their latest validation loss. */
export async function listRunSummaries (db: Kysely<Database>): Promise<RunSummary[]> {
  const rows = await db.selectFrom('runs').selectAll().orderBy('created_at', 'desc').execute()
  const losses = await db.selectFrom('checkpoints').select(['run_id', 'val_loss', 'round']).where('val_loss', 'is not', null).orderBy('round', 'desc').execute()
  return rows.map((r) => summarize(r, losses.find((l) => l.run_id === r.id)?.val_loss ?? null))
}

/** Everything the run page shows: summary, spec, rounds timeline, checkpoints, contributions. */
export async function getRunDetail (db: Kysely<Database>, runId: string) {
  const run = await db.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirst()
  if (run === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no run ${runId}`)
  const checkpoints = await db.selectFrom('checkpoints').selectAll().where('run_id', '=', runId).orderBy('round').execute()
  const rounds = await db.selectFrom('rounds').selectAll().where('run_id', '=', runId).orderBy('opened_at').execute()
  const assignments = await db.selectFrom('assignments').innerJoin('nodes', 'nodes.id', 'assignments.node_id')
    .select(['assignments.id', 'assignments.round_id', 'assignments.status', 'assignments.tokens', 'nodes.name', 'nodes.id as node_id'])
    .where('assignments.run_id', '=', runId).execute()
  const verdicts = await db.selectFrom('ledger').select(['round', 'reason', 'peer_id', 'outcome', 'assignment_id', 'score']).where('run_id', '=', runId).orderBy('seq').execute()
  const refusals = verdicts.filter((v) => v.outcome === 'refused')
  // A unit's score is the one its verdict row recorded (the coordinator scores each report once).
  const scoreOf = new Map(verdicts.filter((v) => v.assignment_id !== null && v.score !== null).map((v) => [v.assignment_id!, v.score!]))
  const spec = run.spec
  // Launched before its dataset was tokenized: the page shows the dataset's progress until then.
  const awaited = run.awaiting_dataset === null ? undefined : await db.selectFrom('datasets').selectAll().where('id', '=', run.awaiting_dataset).executeTakeFirst()
  return {
    summary: summarize(run, checkpoints.filter((c) => c.val_loss !== null).at(-1)?.val_loss ?? null),
    spec,
    /** the dataset this run waits for (it starts when that is ready, if `startWhenReady`); null once it has its shards */
    awaiting: awaited === undefined ? null : { dataset: awaitedDatasetView(awaited), startWhenReady: run.start_when_ready },
    checkpoints: checkpoints.map((c) => ({ round: c.round, sha256: c.sha256, tokensSeen: c.tokens_seen, valLoss: c.val_loss, createdAt: c.created_at.toISOString() })),
    rounds: rounds.map((r) => {
      const mine = assignments.filter((a) => a.round_id === r.id)
      return {
        id: r.id,
        number: r.number,
        status: r.status,
        openedAt: r.opened_at.toISOString(),
        closedAt: r.closed_at?.toISOString() ?? null,
        durationSeconds: r.closed_at === null ? null : (r.closed_at.getTime() - r.opened_at.getTime()) / 1000,
        closeReason: r.close_reason,
        /** the checkpoint its units trained from */
        baseCheckpoint: r.base_checkpoint,
        /** the checkpoint its outer step was applied to: its base, or in an overlapped run the one after */
        appliedTo: r.applied_to ?? (r.status === 'closed' ? r.base_checkpoint : null),
        tokens: r.tokens,
        trainLoss: r.train_loss,
        valLoss: r.val_loss,
        participants: mine.map((a) => ({ nodeId: a.node_id, name: a.name, status: a.status, tokens: a.tokens, score: scoreOf.get(a.id) ?? null })),
        refusals: refusals.filter((x) => x.round === r.number).map((x) => ({ peerId: x.peer_id, reason: x.reason ?? '', score: x.score }))
      }
    })
  }
}

/**
 * Finds a run by what a person types: its id, a unique start of its id (as `git` takes a
 * short hash), or its exact name. Refuses with the runs it could have meant.
 */
export async function resolveRunRef (db: Kysely<Database>, ref: string): Promise<{ id: string, name: string }> {
  const wanted = ref.trim()
  const rows = await db.selectFrom('runs').select(['id', 'name']).orderBy('created_at', 'desc').execute()
  const byId = rows.filter((r) => r.id === wanted.toLowerCase() || (wanted.length >= 4 && r.id.startsWith(wanted.toLowerCase())))
  const matches = byId.length > 0 ? byId : rows.filter((r) => r.name === wanted)
  if (matches.length === 1) return matches[0]!
  const listing = (list: typeof rows): string => list.slice(0, 5).map((r) => `${r.id.slice(0, 8)} "${r.name}"`).join(', ')
  if (matches.length > 1) throw new CoordinatorError('ERR_INVALID_INPUT', `"${wanted}" matches ${matches.length} runs (${listing(matches)}); give more of the id`)
  if (rows.length === 0) throw new CoordinatorError('ERR_NOT_FOUND', `no run "${wanted}": this install has no runs yet`)
  throw new CoordinatorError('ERR_NOT_FOUND', `no run "${wanted}" on this install; runs here: ${listing(rows)}${rows.length > 5 ? ', …' : ''} (all of them: pnpm coordinator run list)`)
}

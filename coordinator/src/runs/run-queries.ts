import { sql } from 'kysely'
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

/** What a summary needs of a run's spec (the runs list reads just these, not the whole spec). */
type SummarySpec = Pick<StoredRunSpec, 'tokenTarget' | 'rounds' | 'paramCount'>

function summarize (r: { id: string, name: string, status: RunStatus, current_round: number, tokens_seen: number, created_at: Date, updated_at: Date, failure_reason: string | null }, spec: SummarySpec, latestValLoss: number | null): RunSummary {
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
  // Anyone may ask, as often as they like: one row per run, with just the three fields of its
  // spec a summary shows (a spec can hold thousands of shard hashes) and its latest validation
  // loss picked in the database, not every checkpoint row of the install.
  const latest = db.selectFrom('checkpoints').distinctOn('run_id').select(['run_id', 'val_loss'])
    .where('val_loss', 'is not', null).orderBy('run_id').orderBy('round', 'desc').as('latest')
  const rows = await db.selectFrom('runs').leftJoin(latest, 'latest.run_id', 'runs.id')
    .select(['runs.id', 'runs.name', 'runs.status', 'runs.current_round', 'runs.tokens_seen', 'runs.created_at', 'runs.updated_at', 'runs.failure_reason', 'latest.val_loss'])
    .select([
      sql<number | null>`runs.spec->'tokenTarget'`.as('token_target'),
      sql<number | null>`runs.spec->'rounds'`.as('rounds_goal'),
      sql<number>`runs.spec->'paramCount'`.as('param_count')
    ])
    .orderBy('runs.created_at', 'desc').execute()
  return rows.map((r) => summarize(r, { tokenTarget: r.token_target ?? undefined, rounds: r.rounds_goal ?? undefined, paramCount: r.param_count }, r.val_loss ?? null))
}

/**
 * The most rounds `runs.get` lists, newest first: what a page shows and refetches every few
 * seconds stays bounded however long a run goes (`roundsOmitted` counts the older ones).
 */
export const RUN_DETAIL_ROUNDS = 500

/**
 * The most checkpoints `runs.get` lists (the loss curve's points): a longer run's are thinned
 * (`lossCurve`); every checkpoint is still listed, a page at a time, by `runs.checkpoints` and
 * `/api/runs/:id/checkpoints`.
 */
export const RUN_DETAIL_CHECKPOINTS = 1000

/** At most `most` of `rows` (at least the first and the last), evenly spaced, always with the first and the last. */
export function thinEvenly<T> (rows: T[], most: number): T[] {
  if (rows.length <= most) return rows
  // The first, the last, and `most - 2` picks evenly spaced strictly between them: the stride
  // is over 1 (there are more rows than picks), so no two picks round to the same row.
  const room = Math.max(0, most - 2)
  const stride = (rows.length - 1) / (room + 1)
  const picked = [rows[0]!]
  for (let i = 1; i <= room; i++) picked.push(rows[Math.round(i * stride)]!)
  picked.push(rows.at(-1)!)
  return picked
}

/**
 * A run's checkpoints for its loss curve, at most `most`: all of them when they fit; else the
 * measured ones thinned evenly (the first and the newest kept), and the newest checkpoint
 * whether measured or not. Long runs of large models leave most checkpoints unmeasured (only
 * the newest waiting one is), and a point without a loss draws nothing.
 */
export function lossCurve<T extends { val_loss: number | null }> (rows: T[], most: number): T[] {
  if (rows.length <= most) return rows
  const newest = rows.at(-1)!
  const measured = rows.filter((r) => r.val_loss !== null)
  if (newest.val_loss !== null) return thinEvenly(measured, most)
  return [...thinEvenly(measured, most - 1), newest]
}

/** Rows by a key, in one pass (each row is looked at once, not once per group). */
function groupBy<T, K> (rows: T[], key: (row: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>()
  for (const row of rows) {
    const k = key(row)
    const group = groups.get(k)
    if (group === undefined) groups.set(k, [row])
    else group.push(row)
  }
  return groups
}

/**
 * Everything the run page shows: summary, spec, its latest RUN_DETAIL_ROUNDS rounds with their
 * participants and refusals (older ones are counted in `roundsOmitted`), checkpoints, contributions.
 */
export async function getRunDetail (db: Kysely<Database>, runId: string) {
  const run = await db.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirst()
  if (run === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no run ${runId}`)
  const allCheckpoints = await db.selectFrom('checkpoints').select(['round', 'sha256', 'tokens_seen', 'val_loss', 'created_at']).where('run_id', '=', runId).orderBy('round').execute()
  const latestLoss = allCheckpoints.findLast((c) => c.val_loss !== null)?.val_loss ?? null
  const checkpoints = lossCurve(allCheckpoints, RUN_DETAIL_CHECKPOINTS)
  const rounds = (await db.selectFrom('rounds').selectAll().where('run_id', '=', runId)
    .orderBy('opened_at', 'desc').orderBy('number', 'desc').limit(RUN_DETAIL_ROUNDS).execute()).reverse()
  // What the older rounds add up to, so the page can say how many it leaves out and count tokens from the start.
  let roundsOmitted = 0
  let omittedTokens = 0
  if (rounds.length === RUN_DETAIL_ROUNDS) {
    const all = await db.selectFrom('rounds').select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.coalesce(eb.fn.sum<number>('tokens'), sql<number>`0`).as('tokens')])
      .where('run_id', '=', runId).executeTakeFirstOrThrow()
    roundsOmitted = Number(all.n) - rounds.length
    omittedTokens = Number(all.tokens) - rounds.reduce((a, r) => a + Number(r.tokens), 0)
  }
  const roundIds = rounds.map((r) => r.id)
  const assignments = roundIds.length === 0
    ? []
    : await db.selectFrom('assignments').innerJoin('nodes', 'nodes.id', 'assignments.node_id')
      .select(['assignments.id', 'assignments.round_id', 'assignments.status', 'assignments.tokens', 'nodes.name', 'nodes.id as node_id'])
      .where('assignments.run_id', '=', runId).where('assignments.round_id', 'in', roundIds).execute()
  // Ledger rows are by round number; the shown rounds are those from the oldest shown number on.
  const firstNumber = Math.min(...rounds.map((r) => r.number))
  const verdicts = roundIds.length === 0
    ? []
    : await db.selectFrom('ledger').select(['round', 'reason', 'peer_id', 'outcome', 'assignment_id', 'score'])
      .where('run_id', '=', runId).where('round', '>=', firstNumber)
      .where((eb) => eb.or([eb('outcome', '=', 'refused'), eb('score', 'is not', null)]))
      .orderBy('seq').execute()
  // A unit's score is the one its verdict row recorded (the coordinator scores each report once).
  const scoreOf = new Map(verdicts.filter((v) => v.assignment_id !== null && v.score !== null).map((v) => [v.assignment_id!, v.score!]))
  // Grouped once: looking each round's rows up in the whole list made a long run's page cost rounds × rows.
  const assignmentsOf = groupBy(assignments, (a) => a.round_id)
  const refusalsOf = groupBy(verdicts.filter((v) => v.outcome === 'refused'), (v) => v.round)
  const spec = run.spec
  // Launched before its dataset was tokenized: the page shows the dataset's progress until then.
  const awaited = run.awaiting_dataset === null ? undefined : await db.selectFrom('datasets').selectAll().where('id', '=', run.awaiting_dataset).executeTakeFirst()
  return {
    summary: summarize(run, spec, latestLoss),
    spec,
    /** the dataset this run waits for (it starts when that is ready, if `startWhenReady`); null once it has its shards */
    awaiting: awaited === undefined ? null : { dataset: awaitedDatasetView(awaited), startWhenReady: run.start_when_ready },
    /** the run's checkpoints oldest first; past RUN_DETAIL_CHECKPOINTS, its measured ones evenly thinned and the newest (`lossCurve`) */
    checkpoints: checkpoints.map((c) => ({ round: c.round, sha256: c.sha256, tokensSeen: c.tokens_seen, valLoss: c.val_loss, createdAt: c.created_at.toISOString() })),
    /** checkpoints left out of `checkpoints` by the thinning */
    checkpointsOmitted: allCheckpoints.length - checkpoints.length,
    /** rounds older than those listed (at most RUN_DETAIL_ROUNDS are), left out */
    roundsOmitted,
    /** tokens the rounds left out trained, so a cumulative count over the listed ones starts where they end */
    omittedTokens,
    rounds: rounds.map((r) => ({
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
      participants: (assignmentsOf.get(r.id) ?? []).map((a) => ({ nodeId: a.node_id, name: a.name, status: a.status, tokens: a.tokens, score: scoreOf.get(a.id) ?? null })),
      refusals: (refusalsOf.get(r.number) ?? []).map((x) => ({ peerId: x.peer_id, reason: x.reason ?? '', score: x.score }))
    }))
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

// Scoring by nodes: when a run screens reports but its model is too large for the coordinator
// to score, each report that passes the other checks is held and scored by two other nodes of
// the run (ones that did not produce it, are online and are not quarantined), as a task they
// get from the work protocol once their own unit is done. Each returns the held-out loss of the
// base, of base − Δ and of base + Δ on the windows the task carries; the report's verdict uses
// their mean. Two honest scorers run the same arithmetic on the same bytes, so they agree; when
// they do not, one of them lied and the report is judged without scores (disagreement is logged
// as a signal for review).
import type { Kysely } from 'kysely'
import { SCORER_AGREEMENT } from '@barnraise/protocol'
import type { ScoreResult, ScoringTask } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import type { Presence } from '../p2p/presence.ts'
import { organizationsServing } from '../nodes/serving-choices.ts'
import { nodeCanScore, typescriptCanScore } from '../runs/run-plan.ts'
import type { HeldOutLoss } from '@barnraise/trainer'

/** Scorers per report. */
export const SCORERS_PER_REPORT = 2

/** Rounds in a row in which a scorer let its tasks expire before it is handed no more for a while. */
export const SILENT_STRIKES = 2
/** How long such a scorer is passed over: its expired tasks count within this window only. */
export const SILENT_BACKOFF_MS = 30 * 60_000

/** Two honest scorers' losses agree to this share of the base loss (protocol's, which both executors are tested against). */
export { SCORER_AGREEMENT }

export interface NodeScoringOptions {
  db: Kysely<Database>
  presence: Presence
  /** The run's scoring windows: the shard blob holding them (batchSize × (seqLen + 1) token ids, row after row). */
  windows: (runId: string) => Promise<{ sha256: string, batchSize: number, seqLen: number }>
}

/** What the scorers measured for one report: the mean losses, and whether two scorers disagreed. */
export interface ScoredLosses { heldOut: HeldOutLoss | undefined, scorers: number, disagreement: string | null }

/** Scoring tasks: who scores what, what they measured, and what is still out. */
export class NodeScoring {
  readonly #o: NodeScoringOptions

  constructor (options: NodeScoringOptions) {
    this.#o = options
  }

  /**
   * Hands report `assignmentId` (of `producerNodeId`) to two scorers; returns how many (0 when
   * fewer than two can score it: one scorer's word alone is never taken). Online, unrevoked,
   * unquarantined nodes of labs serving the run, fewest open tasks first, from two different
   * labs, neither the producer's: two scorers always agree when one lab runs both, so a lab
   * could otherwise vouch for its own reports or condemn another's alone. Only nodes that can
   * score the run's task (`nodeCanScore`): any node where the TypeScript forward pass takes it,
   * else nodes whose work requests name a torch executor and whose hardware profile holds the
   * task, GPUs first. Both are the node's claims; a node that lies about them only refuses the
   * task it is then handed (the report goes unscored, as with fewer than two scorers).
   */
  async open (runId: string, roundId: string, assignmentId: string, producerNodeId: string): Promise<number> {
    const { db } = this.#o
    const producer = await db.selectFrom('nodes').select('organization_id').where('id', '=', producerNodeId).executeTakeFirst()
    const candidates = (await this.#candidates(runId)).filter((n) => n.id !== producerNodeId && n.organization_id !== producer?.organization_id)
    const scorers: typeof candidates = []
    for (const n of candidates) {
      if (scorers.length < SCORERS_PER_REPORT && !scorers.some((s) => s.organization_id === n.organization_id)) scorers.push(n)
    }
    if (scorers.length < SCORERS_PER_REPORT) return 0
    const windows = await this.#o.windows(runId)
    await db.insertInto('scoring_tasks')
      .values(scorers.map((s) => ({ run_id: runId, round_id: roundId, assignment_id: assignmentId, node_id: s.id, windows_blob: windows.sha256, status: 'assigned' as const })))
      .execute()
    return scorers.length
  }

  /**
   * Whether every lab in `producerLabs` has scorers in two other labs now (online, unrevoked,
   * unquarantined nodes of labs serving the run that can score its task): where one does not,
   * its reports would go unscored, so a round opened now doubles units instead (round-engine.ts).
   */
  async covers (runId: string, producerLabs: Iterable<string>): Promise<boolean> {
    const labs = new Set((await this.#candidates(runId)).map((n) => n.organization_id))
    for (const lab of new Set(producerLabs)) {
      if (labs.size - (labs.has(lab) ? 1 : 0) < SCORERS_PER_REPORT) return false
    }
    return true
  }

  /**
   * The nodes that may score the run's reports now, fewest open tasks first and, for a task past
   * the TypeScript limits, GPUs before CPUs with as many: the CPU may well find it too slow for
   * the round and refuse it.
   */
  async #candidates (runId: string): Promise<Array<{ id: string, organization_id: string, open: string | null }>> {
    const { db, presence } = this.#o
    const serving = await organizationsServing(db, runId)
    // Only the live peers' rows (at most one a connection), each with its count of open tasks:
    // this runs for every report held for scoring.
    const livePeers = presence.livePeers()
    if (serving.size === 0 || livePeers.length === 0) return []
    const run = await db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirst()
    if (run === undefined) return []
    const spec = run.spec
    const anyNode = typescriptCanScore(spec)
    const nodes = await db.selectFrom('nodes')
      .select(['nodes.id', 'nodes.peer_id', 'nodes.organization_id', 'nodes.hardware'])
      .select((eb) => eb.selectFrom('scoring_tasks').select(eb.fn.countAll<string>().as('n'))
        .whereRef('scoring_tasks.node_id', '=', 'nodes.id').where('scoring_tasks.status', '=', 'assigned').as('open'))
      .where('nodes.revoked_at', 'is', null).where('nodes.quarantined_at', 'is', null)
      .where('nodes.organization_id', 'in', [...serving]).where('nodes.peer_id', 'in', livePeers)
      .orderBy('nodes.first_seen_at').execute()
    const onGpu = (peerId: string): number => anyNode || presence.executorOf(peerId) === 'torch-cuda' ? 0 : 1
    const able = nodes.filter((n) => presence.isLive(n.peer_id) && nodeCanScore(spec, { executor: presence.executorOf(n.peer_id), hardware: n.hardware }))
    const silent = await this.#silentScorers(able.map((n) => n.id))
    return able.filter((n) => !silent.has(n.id))
      .sort((a, b) => Number(a.open ?? 0) - Number(b.open ?? 0) || onGpu(a.peer_id) - onGpu(b.peer_id))
  }

  /**
   * Of `nodeIds`, those that let tasks expire unanswered in SILENT_STRIKES rounds within
   * SILENT_BACKOFF_MS with no answer since: each such round waited for them until its deadline,
   * so a scorer that takes tasks and never answers is handed none for a while. An answer, even a
   * refusal, clears the strikes; a strike ages out with the window.
   */
  async #silentScorers (nodeIds: string[]): Promise<Set<string>> {
    if (nodeIds.length === 0) return new Set()
    const since = new Date(Date.now() - SILENT_BACKOFF_MS)
    // Rounds with a task expired since the node's last answer (in the window), counted in one
    // grouped query: this runs for every report held for scoring. Rounds, not tasks: a round's
    // tasks all expire at its deadline together, and two handed to one scorer late in a round
    // are one bad round, not a pattern.
    const rows = await this.#o.db.selectFrom('scoring_tasks as t').select('t.node_id')
      .where('t.node_id', 'in', nodeIds).where('t.status', '=', 'expired').where('t.resolved_at', '>', since)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('scoring_tasks as d').select('d.id')
        .whereRef('d.node_id', '=', 't.node_id').where('d.status', '=', 'done').whereRef('d.resolved_at', '>', 't.resolved_at'))))
      .groupBy('t.node_id').having((eb) => eb.fn.count('t.round_id').distinct(), '>=', SILENT_STRIKES).execute()
    return new Set(rows.map((r) => r.node_id))
  }

  /** The node's oldest open task in an open round of a running run, or null. */
  async taskFor (nodeId: string): Promise<ScoringTask | null> {
    const { db } = this.#o
    const t = await db.selectFrom('scoring_tasks')
      .innerJoin('rounds', 'rounds.id', 'scoring_tasks.round_id')
      .innerJoin('runs', 'runs.id', 'scoring_tasks.run_id')
      .innerJoin('assignments', 'assignments.id', 'scoring_tasks.assignment_id')
      .select(['scoring_tasks.id', 'scoring_tasks.run_id', 'runs.name', 'runs.spec', 'rounds.number', 'rounds.base_checkpoint', 'rounds.deadline_at', 'assignments.report_blob', 'assignments.codec'])
      .where('scoring_tasks.node_id', '=', nodeId).where('scoring_tasks.status', '=', 'assigned')
      .where('rounds.status', '=', 'open').where('runs.status', '=', 'running')
      .orderBy('scoring_tasks.created_at').executeTakeFirst()
    if (t === undefined || t.report_blob === null) return null
    const windows = await this.#o.windows(t.run_id)
    return {
      taskId: t.id,
      runId: t.run_id,
      runName: t.name,
      round: t.number,
      baseCheckpoint: t.base_checkpoint,
      modelConfig: t.spec.modelConfig,
      report: t.report_blob,
      codec: t.codec ?? t.spec.codec,
      windows: windows.sha256,
      batchSize: windows.batchSize,
      seqLen: windows.seqLen,
      deadline: t.deadline_at.toISOString()
    }
  }

  /**
   * Records a node's answer to its own open task. Returns the report's run and assignment
   * when this was its last open task (the report can be judged now); null otherwise, and for
   * an answer to a task that is not this node's or not open (ignored, as a late answer is).
   */
  async record (nodeId: string, result: ScoreResult): Promise<{ runId: string, assignmentId: string } | null> {
    const { db } = this.#o
    const done = await db.updateTable('scoring_tasks')
      .set({ status: 'done', base_loss: result.base, after_loss: result.after, reversed_loss: result.reversed, resolved_at: new Date() })
      .where('id', '=', result.taskId).where('node_id', '=', nodeId).where('status', '=', 'assigned')
      .returning(['run_id', 'assignment_id']).executeTakeFirst()
    if (done === undefined) return null
    const open = await db.selectFrom('scoring_tasks').select('id').where('assignment_id', '=', done.assignment_id).where('status', '=', 'assigned').executeTakeFirst()
    return open === undefined ? { runId: done.run_id, assignmentId: done.assignment_id } : null
  }

  /** Scoring tasks of the round still out. */
  async outstanding (roundId: string): Promise<number> {
    const row = await this.#o.db.selectFrom('scoring_tasks').select((eb) => eb.fn.countAll<string>().as('n'))
      .where('round_id', '=', roundId).where('status', '=', 'assigned').executeTakeFirstOrThrow()
    return Number(row.n)
  }

  /** The round closes: tasks still out will not be answered. */
  async expire (roundId: string): Promise<void> {
    await this.#o.db.updateTable('scoring_tasks').set({ status: 'expired', resolved_at: new Date() })
      .where('round_id', '=', roundId).where('status', '=', 'assigned').execute()
  }

  /**
   * What the report's scorers measured, once both answered and agree; with fewer answers there
   * are no scores (a lone scorer could otherwise have an honest report excluded). A loss a
   * scorer could not compute (diverged) counts as infinite.
   */
  async losses (assignmentId: string): Promise<ScoredLosses> {
    const rows = await this.#o.db.selectFrom('scoring_tasks').innerJoin('nodes', 'nodes.id', 'scoring_tasks.node_id')
      .select(['scoring_tasks.base_loss', 'scoring_tasks.after_loss', 'scoring_tasks.reversed_loss', 'nodes.peer_id'])
      .where('scoring_tasks.assignment_id', '=', assignmentId).where('scoring_tasks.status', '=', 'done').execute()
    const usable = rows.filter((r) => r.base_loss !== null)
    if (usable.length < SCORERS_PER_REPORT) return { heldOut: undefined, scorers: usable.length, disagreement: null }
    const value = (x: number | null): number => x ?? Infinity
    const base = usable[0]!.base_loss!
    for (const other of usable.slice(1)) {
      const apart = Math.max(Math.abs(other.base_loss! - base), Math.abs(value(other.after_loss) - value(usable[0]!.after_loss)), Math.abs(value(other.reversed_loss) - value(usable[0]!.reversed_loss)))
      if (!(apart <= SCORER_AGREEMENT * Math.abs(base))) {
        return { heldOut: undefined, scorers: usable.length, disagreement: `scorers ${usable.map((r) => r.peer_id).join(' and ')} disagree by ${Number.isFinite(apart) ? apart.toFixed(4) : 'an infinite loss'}` }
      }
    }
    const mean = (pick: (r: typeof usable[number]) => number): number => usable.reduce((s, r) => s + pick(r), 0) / usable.length
    return {
      heldOut: { base: mean((r) => r.base_loss!), after: mean((r) => value(r.after_loss)), reversed: mean((r) => value(r.reversed_loss)) },
      scorers: usable.length,
      disagreement: null
    }
  }
}

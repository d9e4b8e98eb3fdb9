// Nodes whose latest units expired unreported sit out a few rounds: a round waits for every unit
// it handed out until its deadline, so a node that takes units and never reports them would
// otherwise make every round of every run its lab serves last the whole deadline.
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'

/** The most rounds of a run a node sits out after a streak of expired units. */
export const MAX_BACKOFF_ROUNDS = 32

/** A node's latest units looked at: enough for a streak that reaches MAX_BACKOFF_ROUNDS. */
const LOOKBACK = Math.log2(MAX_BACKOFF_ROUNDS) + 1

/**
 * How many of a run's rounds a node sits out after its latest `streak` units (in any run) expired
 * unreported: one after the first, doubling with each more, at most MAX_BACKOFF_ROUNDS. A node
 * that reports (or declines) a unit in time starts afresh.
 */
export function backoffRounds (streak: number): number {
  return streak <= 0 ? 0 : Math.min(MAX_BACKOFF_ROUNDS, 2 ** (streak - 1))
}

/**
 * Whether a unit refused (declined, or its report turned away) at `resolvedAt` held its round
 * as an expiry would: in the second half of the round's time. An honest agent declines a unit
 * it cannot train as soon as it gets it; a node that takes each unit and declines it just
 * before the deadline holds every round open as long as one that never answers.
 */
export function lateRefusal (resolvedAt: Date, openedAt: Date, deadlineAt: Date): boolean {
  return resolvedAt.getTime() >= openedAt.getTime() + (deadlineAt.getTime() - openedAt.getTime()) / 2
}

/**
 * The nodes of `nodeIds` that sit out run `runId`'s next round, each with its streak: those
 * whose latest units expired unreported at their round's deadline, with fewer of the run's
 * rounds opened since the last of them than backoffRounds says. A unit that ended before its
 * deadline (its node revoked, its run at its goal) says nothing about its node and is passed over;
 * an accepted report ends a streak, and so does a refused report or a declined unit unless it
 * came in the second half of its round's time (lateRefusal), where it counts as an expiry.
 */
export async function backedOffNodes (db: Kysely<Database>, runId: string, nodeIds: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  if (nodeIds.length === 0) return out
  const rows = await db.selectFrom('nodes')
    .innerJoinLateral((eb) => eb.selectFrom('assignments')
      .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
      .select(['assignments.status', 'assignments.resolved_at', 'rounds.opened_at', 'rounds.deadline_at'])
      .whereRef('assignments.node_id', '=', 'nodes.id')
      .where('assignments.resolved_at', 'is not', null)
      .where((w) => w.or([
        w('assignments.status', 'in', ['accepted', 'refused']),
        w.and([w('assignments.status', '=', 'expired'), w('assignments.resolved_at', '>=', w.ref('rounds.deadline_at'))])
      ]))
      .orderBy('assignments.resolved_at', 'desc').limit(LOOKBACK)
      .as('latest'), (join) => join.onTrue())
    .select(['nodes.id', 'latest.status', 'latest.resolved_at', 'latest.opened_at', 'latest.deadline_at'])
    .where('nodes.id', 'in', nodeIds)
    .orderBy('nodes.id').orderBy('latest.resolved_at', 'desc')
    .execute()
  const streaks = new Map<string, { streak: number, since: Date, broken: boolean }>()
  for (const r of rows) {
    const s = streaks.get(r.id) ?? { streak: 0, since: r.resolved_at!, broken: false }
    if (!s.broken && (r.status === 'expired' || lateRefusal(r.resolved_at!, r.opened_at, r.deadline_at))) s.streak++
    else s.broken = true
    streaks.set(r.id, s)
  }
  const expired = [...streaks].filter(([, s]) => s.streak > 0)
  if (expired.length === 0) return out
  // The run's latest rounds are all a backoff can count.
  const opened = (await db.selectFrom('rounds').select('opened_at').where('run_id', '=', runId)
    .orderBy('opened_at', 'desc').limit(MAX_BACKOFF_ROUNDS).execute()).map((r) => r.opened_at.getTime())
  for (const [id, s] of expired) {
    const since = opened.filter((t) => t > s.since.getTime()).length
    if (since < backoffRounds(s.streak)) out.set(id, s.streak)
  }
  return out
}

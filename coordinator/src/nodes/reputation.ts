// A node's reputation is its record of verdicts on the ledger, across runs: what was folded,
// what was excluded for what it contained, and the scores it earned. A node whose recent
// record is mostly exclusions is quarantined: its reports are still scored (so a reviewer can
// see whether it behaves now) but neither folded nor credited, until someone who may review
// it releases it. The record restarts at each release.
import { sql } from 'kysely'
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'

/**
 * Refusal codes that say the report's content was bad (nothing trained, wrong direction,
 * copied, replayed, poisoned, mismatched): each is a flag against the node. Refusals about
 * timing or bookkeeping (a late report, a retry, a declined unit) are not.
 */
export const FLAG_CODES: ReadonlySet<string> = new Set([
  'ERR_EMPTY_DELTA', 'ERR_NORM_BOUND', 'ERR_NOT_FINITE', 'ERR_NEAR_ZERO', 'ERR_OUTSIZED', 'ERR_UNRELATED',
  'ERR_COPIED', 'ERR_REPLAYED', 'ERR_HARMFUL', 'ERR_LOSS_MISMATCH'
])

/**
 * Refusals that put a node up for review without counting toward quarantine: a redundant pair
 * that disagreed names two nodes, and only one of them need have lied.
 */
export const REVIEW_CODES: ReadonlySet<string> = new Set(['ERR_REDUNDANCY_MISMATCH'])

export interface QuarantinePolicy {
  /** How many of the node's latest judged reports (folded or flagged) are weighed. */
  window: number
  /** Quarantine once at least this many of them were flagged… */
  minFlags: number
  /** …and flags are at least this share of them. */
  minShare: number
}

/**
 * Three flags, most of the recent record: an honest node excluded once by mistake (the
 * screening excludes well under 1% of honest reports) is not quarantined, a node that keeps
 * sending bad work is, within three of its reports.
 */
export const DEFAULT_QUARANTINE: QuarantinePolicy = { window: 12, minFlags: 3, minShare: 0.5 }

/** The code at the start of a ledger reason (`ERR_X: …`), or null. */
export function reasonCode (reason: string | null): string | null {
  const match = /^(ERR_[A-Z_]+):/.exec(reason ?? '')
  return match?.[1] ?? null
}

export interface NodeRecord {
  /** Reports folded and credited since the last review. */
  folded: number
  /** Reports excluded for their content (or disputed by a redundant twin) since the last review, by code. */
  flags: Record<string, number>
  /** Mean score of the scored reports since the last review (folded or not); null when none was scored. */
  meanScore: number | null
  /** Reports scored while quarantined that passed screening: evidence for a reviewer. */
  passedWhileQuarantined: number
}

type Reader = Kysely<Database> | Transaction<Database>

/**
 * Every node's record since its last review, from the ledger in one grouped query (the Nodes
 * page lists them all). Nodes without a verdict yet are absent.
 */
export async function nodeRecords (db: Reader): Promise<Map<string, NodeRecord>> {
  const rows = await db.selectFrom('ledger').innerJoin('nodes', 'nodes.id', 'ledger.node_id')
    .select(['ledger.node_id as nodeId', 'ledger.outcome as outcome'])
    .select(sql<string | null>`substring(ledger.reason from '^(ERR_[A-Z_]+):')`.as('code'))
    .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.count<string>('ledger.score').as('scored'), eb.fn.sum<number | null>('ledger.score').as('total')])
    .where((eb) => eb.or([eb('nodes.reviewed_at', 'is', null), eb('ledger.created_at', '>=', eb.ref('nodes.reviewed_at'))]))
    .groupBy(['ledger.node_id', 'ledger.outcome', sql`3`])
    .execute()
  const records = new Map<string, NodeRecord & { scored: number, total: number }>()
  for (const r of rows) {
    if (r.nodeId === null) continue
    const record = records.get(r.nodeId) ?? { folded: 0, flags: {}, meanScore: null, passedWhileQuarantined: 0, scored: 0, total: 0 }
    const n = Number(r.n)
    if (r.outcome === 'accepted') record.folded += n
    else if (r.code === 'ERR_QUARANTINED') record.passedWhileQuarantined += n
    else if (r.code !== null && (FLAG_CODES.has(r.code) || REVIEW_CODES.has(r.code))) record.flags[r.code] = (record.flags[r.code] ?? 0) + n
    record.scored += Number(r.scored)
    record.total += Number(r.total ?? 0)
    records.set(r.nodeId, record)
  }
  return new Map([...records].map(([id, { scored, total, ...record }]) => [id, { ...record, meanScore: scored === 0 ? null : total / scored }]))
}

/**
 * After a flagged refusal, inside its transaction: quarantines the node when its latest judged
 * reports since its last review meet the policy. Returns the reason when it did.
 */
export async function quarantineIfWarranted (trx: Transaction<Database>, nodeId: string, policy: QuarantinePolicy = DEFAULT_QUARANTINE): Promise<string | null> {
  const node = await trx.selectFrom('nodes').select(['quarantined_at', 'reviewed_at']).where('id', '=', nodeId).forUpdate().executeTakeFirst()
  if (node === undefined || node.quarantined_at !== null) return null
  let query = trx.selectFrom('ledger').select(['outcome', 'reason']).where('node_id', '=', nodeId)
    .orderBy('created_at', 'desc').orderBy('seq', 'desc').limit(policy.window * 4)
  if (node.reviewed_at !== null) query = query.where('created_at', '>=', node.reviewed_at)
  const judged = (await query.execute())
    .map((r) => r.outcome === 'accepted' ? 'folded' : FLAG_CODES.has(reasonCode(r.reason) ?? '') ? reasonCode(r.reason)! : null)
    .filter((v): v is string => v !== null)
    .slice(0, policy.window)
  const flags = judged.filter((v) => v !== 'folded')
  if (flags.length < policy.minFlags || flags.length < policy.minShare * judged.length) return null
  const counts = new Map<string, number>()
  for (const f of flags) counts.set(f, (counts.get(f) ?? 0) + 1)
  const reason = `${flags.length} of its last ${judged.length} judged reports were excluded (${[...counts].map(([c, n]) => n > 1 ? `${c} ×${n}` : c).join(', ')})`
  await trx.updateTable('nodes').set({ quarantined_at: new Date(), quarantine_reason: reason }).where('id', '=', nodeId).execute()
  return reason
}

/**
 * Whether `viewer` may release a node from quarantine: an admin, or an organizer of a run it
 * reported to. Not its own lab: anyone can sign up as a lab's admin, and quarantine is there
 * for the lab whose node poisons or free-rides. Where anyone may organize
 * (`--open-organizing`), that lab could make a run of its own and release from it: then only an
 * admin may (`organizersMay` false).
 */
export async function mayReviewNode (db: Reader, viewer: { id: string, roles: readonly string[], organizationId: string | null }, node: { id: string, organizationId: string }, organizersMay = true): Promise<boolean> {
  if (viewer.roles.includes('admin')) return true
  if (!organizersMay || !viewer.roles.includes('organizer')) return false
  const run = await db.selectFrom('ledger').innerJoin('runs', 'runs.id', 'ledger.run_id').select('runs.id')
    .where('ledger.node_id', '=', node.id).where('runs.created_by', '=', viewer.id).limit(1).executeTakeFirst()
  return run !== undefined
}

/** Releases a quarantined node after review: its record starts afresh. Throws ERR_NOT_FOUND, ERR_FORBIDDEN, or ERR_CONFLICT when it is not quarantined. */
export async function releaseNode (db: Kysely<Database>, viewer: { id: string, roles: readonly string[], organizationId: string | null }, nodeId: string, organizersMay = true): Promise<void> {
  const node = await db.selectFrom('nodes').select(['id', 'organization_id', 'quarantined_at']).where('id', '=', nodeId).executeTakeFirst()
  if (node === undefined) throw new CoordinatorError('ERR_NOT_FOUND', 'no such node')
  if (!await mayReviewNode(db, viewer, { id: node.id, organizationId: node.organization_id }, organizersMay)) {
    throw new CoordinatorError('ERR_FORBIDDEN', organizersMay
      ? 'only an admin or an organizer of a run it reported to may review it; a node\'s own lab cannot release it'
      : 'on a coordinator where anyone may organize, only an admin may review a quarantined node')
  }
  // The database's clock, as the ledger's created_at is, and whole milliseconds as it is: the
  // record restarts with this millisecond (rows at or after it count). A finer time left a row
  // written in the same millisecond after the release, its time truncated, counted as before it.
  // A row from just before, in the same millisecond, counts too: the reviewer could not have seen it.
  const released = await db.updateTable('nodes').set({ quarantined_at: null, quarantine_reason: null, reviewed_at: sql<Date>`date_trunc('milliseconds', clock_timestamp())`, reviewed_by: viewer.id })
    .where('id', '=', nodeId).where('quarantined_at', 'is not', null).executeTakeFirst()
  if (released.numUpdatedRows === 0n) throw new CoordinatorError('ERR_CONFLICT', 'this node is not quarantined; there is nothing to release')
}

import type { Kysely } from 'kysely'
import type { Database, PledgeKind, RunStatus } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import type { DeviceKind } from '../ledger/device-hours.ts'
import { allocateDeliveries, fulfilmentOf, isComputePledge } from './pledge-fulfilment.ts'
import type { AllocatablePledge, Allocation } from './pledge-fulfilment.ts'
import { hoursByKind, loadRunDeliveries, runDeliveredHours } from './run-deliveries.ts'
import type { RunDelivery } from './run-deliveries.ts'

/** A run's goals against what was pledged and what its nodes delivered. */
export interface RunGoalProgress {
  fundingGoalUsd: number | null
  computeGoalGpuHours: number | null
  pledgedUsd: number
  pledgedGpuHours: number
  pledgedCpuCoreHours: number
  /** by every node of the run, whoever pledged: the compute goal is the run's, not a funder's */
  deliveredGpuHours: number
  deliveredCpuCoreHours: number
}

/** How far one compute pledge is delivered, in its own unit. */
export interface PledgeFulfilment {
  unit: 'gpu_hours' | 'cpu_core_hours'
  pledged: number
  delivered: number
  fraction: number
  fulfilled: boolean
  fulfilledAt: string | null
}

/** One pledge as lists show it. */
export interface PledgeLine {
  id: string
  runId: string
  kind: PledgeKind
  amount: number
  note: string | null
  by: string
  organizationName: string | null
  createdAt: string
  /** null for money pledges: money is not tied to particular machines */
  fulfilment: PledgeFulfilment | null
}

/** One ledger row, or the part of it, that a statement accounts for. */
export interface StatementRow {
  seq: number
  round: number
  at: string
  nodeName: string
  peerId: string
  organizationName: string
  kind: DeviceKind
  device: string
  computeSeconds: number
  /** GPU-hours or CPU core-hours (per `kind`) counted for this pledge */
  hours: number
  tokens: number
  /** fraction of the row counted: below 1 when the row finished this pledge or was shared with another */
  share: number
  /** the checkpoint the round this row belongs to produced; null while the round is open */
  checkpoint: string | null
}

/** Everything one pledge bought, or for money, what the run did since. */
export interface PledgeStatement {
  pledge: PledgeLine & { runName: string, runStatus: RunStatus }
  /** "compute" counts only what was delivered on the pledge's behalf; "run" is the whole run since the pledge */
  scope: 'compute' | 'run'
  rule: string
  totals: { tokens: number, gpuHours: number, cpuCoreHours: number, reports: number }
  /** the pledging organization's compute on this run after the pledge, counted here or not */
  organizationSincePledge: { gpuHours: number, cpuCoreHours: number } | null
  labs: Array<{ organizationId: string | null, name: string, tokens: number, gpuHours: number, cpuCoreHours: number, nodes: number, reports: number }>
  nodes: Array<{ nodeId: string | null, name: string, peerId: string, organizationName: string, kind: DeviceKind, device: string, tokens: number, hours: number, reports: number }>
  checkpoints: Array<{ round: number, sha256: string | null, state: 'written' | 'pending' | 'not kept', valLoss: number | null, tokensSeen: number | null, createdAt: string | null, tokens: number }>
  run: RunGoalProgress
  /** the rows counted, oldest first; the API lists the first STATEMENT_ROWS_LISTED (`totals.reports` counts them all), the CSV every one */
  rows: StatementRow[]
}

/**
 * Rows `pledges.statement` lists: a money pledge counts every row the run wrote after it (34 MB
 * of JSON at 94,500 rows, asked for 16 at a time in a batch), so the API lists the oldest ones
 * and the CSV, streamed to a few clients at a time, has them all.
 */
export const STATEMENT_ROWS_LISTED = 1000

/** Calls in progress per database and key (shared below). */
const inFlight = new WeakMap<Kysely<Database>, Map<string, Promise<unknown>>>()

/**
 * `compute()`'s answer, shared by every caller that asks for `key` while it runs: a batch of the
 * same public read (16 calls in one request) costs one computation. Nothing is kept after it
 * settles, so no answer is older than the request that asked for it.
 */
async function shared<T> (db: Kysely<Database>, key: string, compute: () => Promise<T>): Promise<T> {
  let calls = inFlight.get(db)
  if (calls === undefined) {
    calls = new Map()
    inFlight.set(db, calls)
  }
  const running = calls.get(key) as Promise<T> | undefined
  if (running !== undefined) return await running
  const started = compute().finally(() => { calls.delete(key) })
  calls.set(key, started)
  return await started
}

interface PledgeRecord extends AllocatablePledge { runId: string, note: string | null, by: string, organizationName: string | null }

/** A run's pledges, its totals, the deliveries its compute pledges could count and how they are allocated. */
interface RunLedgerView {
  run: { id: string, name: string, status: RunStatus, spec: { fundingGoalUsd?: number, computeGoalGpuHours?: number } }
  pledges: PledgeRecord[]
  /** rows of organizations with compute pledges, after the earliest of those pledges */
  deliveries: RunDelivery[]
  allocations: Map<string, Allocation[]>
  delivered: { gpuHours: number, cpuCoreHours: number }
}

/**
 * A run's view, one load for every reader asking at once (pledge lists and statements of the
 * run). A load shared from before `pledgeIds` were made lacks them: then the caller reads afresh.
 */
async function loadRunView (db: Kysely<Database>, runId: string, pledgeIds: string[] = []): Promise<RunLedgerView> {
  const view = await shared(db, `run-view:${runId}`, async () => await readRunView(db, runId))
  const held = new Set(view.pledges.map((p) => p.id))
  return pledgeIds.every((id) => held.has(id)) ? view : await readRunView(db, runId)
}

async function readRunView (db: Kysely<Database>, runId: string): Promise<RunLedgerView> {
  const run = await db.selectFrom('runs').select(['id', 'name', 'status', 'spec']).where('id', '=', runId).executeTakeFirst()
  if (run === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no run ${runId}; see /api/runs for the runs this coordinator has`)
  const rows = await db.selectFrom('pledges')
    .leftJoin('users', 'users.id', 'pledges.user_id')
    .leftJoin('organizations', 'organizations.id', 'pledges.organization_id')
    .select(['pledges.id', 'pledges.run_id', 'pledges.kind', 'pledges.amount', 'pledges.note', 'pledges.organization_id', 'pledges.created_at',
      'users.display_name', 'organizations.name as organization_name'])
    .where('pledges.run_id', '=', runId).orderBy('pledges.created_at').orderBy('pledges.id').execute()
  const pledges: PledgeRecord[] = rows.map((p) => ({
    id: p.id, runId: p.run_id, kind: p.kind, amount: p.amount, note: p.note, organizationId: p.organization_id,
    createdAt: p.created_at, by: p.display_name ?? 'someone', organizationName: p.organization_name
  }))
  // Only rows some compute pledge could count: its organization's, written after it.
  const compute = pledges.filter((p) => isComputePledge(p.kind) && p.organizationId !== null)
  const deliveries = compute.length === 0
    ? []
    : await loadRunDeliveries(db, runId, { organizationIds: [...new Set(compute.map((p) => p.organizationId!))], after: compute[0]!.createdAt })
  return {
    run: { id: run.id, name: run.name, status: run.status, spec: run.spec as RunLedgerView['run']['spec'] },
    pledges,
    deliveries,
    allocations: allocateDeliveries(pledges, deliveries),
    delivered: await runDeliveredHours(db, runId)
  }
}

function goalProgress (view: RunLedgerView): RunGoalProgress {
  const pledged = (kind: PledgeKind): number => view.pledges.filter((p) => p.kind === kind).reduce((a, p) => a + p.amount, 0)
  const delivered = view.delivered
  return {
    fundingGoalUsd: view.run.spec.fundingGoalUsd ?? null,
    computeGoalGpuHours: view.run.spec.computeGoalGpuHours ?? null,
    pledgedUsd: pledged('usd'),
    pledgedGpuHours: pledged('gpu_hours'),
    pledgedCpuCoreHours: pledged('cpu_core_hours'),
    deliveredGpuHours: delivered.gpuHours,
    deliveredCpuCoreHours: delivered.cpuCoreHours
  }
}

function pledgeLine (view: RunLedgerView, p: PledgeRecord): PledgeLine {
  let fulfilment: PledgeFulfilment | null = null
  if (isComputePledge(p.kind)) fulfilment = { unit: p.kind, pledged: p.amount, ...fulfilmentOf(p, view.allocations.get(p.id) ?? []) }
  return { id: p.id, runId: p.runId, kind: p.kind, amount: p.amount, note: p.note, by: p.by, organizationName: p.organizationName, createdAt: p.createdAt.toISOString(), fulfilment }
}

/** A run's pledges (newest first) with each one's fulfilment, and the run's goals against pledges and deliveries. */
export async function runPledgeSummary (db: Kysely<Database>, runId: string): Promise<RunGoalProgress & { pledges: PledgeLine[], pledgeCount: number }> {
  const view = await loadRunView(db, runId)
  // The totals count every pledge; the list, read by anyone, is the newest few.
  const newest = view.pledges.slice(-RUN_PLEDGES_LISTED).reverse()
  return { ...goalProgress(view), pledges: newest.map((p) => pledgeLine(view, p)), pledgeCount: view.pledges.length }
}

/** Pledges a run's public summary lists, newest first (each person's own are on their Pledges page). */
export const RUN_PLEDGES_LISTED = 50

/** A person's pledges, newest first, each with its fulfilment and its run's goal progress. */
export async function pledgesOfUser (db: Kysely<Database>, userId: string): Promise<Array<PledgeLine & { runName: string, runStatus: RunStatus, run: RunGoalProgress }>> {
  const mine = await db.selectFrom('pledges').select(['id', 'run_id']).where('user_id', '=', userId).orderBy('created_at', 'desc').orderBy('id', 'desc').execute()
  const views = new Map<string, RunLedgerView & { byId: Map<string, PledgeRecord> }>()
  for (const runId of new Set(mine.map((p) => p.run_id))) {
    const view = await loadRunView(db, runId, mine.filter((p) => p.run_id === runId).map((p) => p.id))
    views.set(runId, { ...view, byId: new Map(view.pledges.map((p) => [p.id, p])) })
  }
  return mine.flatMap((m) => {
    const view = views.get(m.run_id)!
    const p = view.byId.get(m.id)
    // Deleted since it was listed (with its run or its person): nothing to show for it.
    if (p === undefined) return []
    return [{ ...pledgeLine(view, p), runName: view.run.name, runStatus: view.run.status, run: goalProgress(view) }]
  })
}

const RULES = {
  gpu_hours: 'GPU-hours delivered to this run by GPU machines of the pledging organization, in accepted ledger rows written after the pledge; when the organization has several pledges to the run, its oldest unfilled pledge counts an hour first.',
  cpu_core_hours: 'CPU core-hours delivered to this run by CPU-only machines of the pledging organization, in accepted ledger rows written after the pledge; when the organization has several pledges to the run, its oldest unfilled pledge counts an hour first.',
  usd: 'Money is not tied to particular machines: this is everything the run trained after the pledge, from every node.'
} as const

/**
 * Everything a pledge bought, from the ledger: tokens, hours by kind, nodes, labs, checkpoints,
 * row by row (the first `maxRows` rows when given; totals count them all). Callers asking for
 * the same statement at once share one computation.
 */
export async function pledgeStatement (db: Kysely<Database>, pledgeId: string, options: { maxRows?: number } = {}): Promise<PledgeStatement> {
  return await shared(db, `statement:${pledgeId}:${options.maxRows ?? 'all'}`, async () => await computeStatement(db, pledgeId, options.maxRows))
}

async function computeStatement (db: Kysely<Database>, pledgeId: string, maxRows: number | undefined): Promise<PledgeStatement> {
  const found = await db.selectFrom('pledges').select('run_id').where('id', '=', pledgeId).executeTakeFirst()
  if (found === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no pledge ${pledgeId}; your pledges and their statements are listed on the Pledges page`)
  const view = await loadRunView(db, found.run_id, [pledgeId])
  const pledge = view.pledges.find((p) => p.id === pledgeId)
  if (pledge === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no pledge ${pledgeId}; your pledges and their statements are listed on the Pledges page`)
  const byRow = new Map(view.deliveries.map((d) => [d.seq, d]))
  const counted: Array<{ row: RunDelivery, hours: number, tokens: number, share: number }> = isComputePledge(pledge.kind)
    ? (view.allocations.get(pledge.id) ?? []).map((a) => ({ row: byRow.get(a.seq)!, hours: a.hours, tokens: a.tokens, share: a.share }))
    : (await loadRunDeliveries(db, view.run.id, { after: pledge.createdAt })).map((row) => ({ row, hours: row.hours, tokens: row.tokens, share: 1 }))

  const rounds = [...new Set(counted.map((c) => c.row.round))].sort((a, b) => a - b)
  const roundRows = rounds.length === 0
    ? []
    : await db.selectFrom('rounds').select(['number', 'status', 'result_checkpoint']).where('run_id', '=', view.run.id).where('number', 'in', rounds).where('status', '=', 'closed').execute()
  const shas = roundRows.map((r) => r.result_checkpoint).filter((s): s is string => s !== null)
  const kept = shas.length === 0 ? [] : await db.selectFrom('checkpoints').select(['sha256', 'val_loss', 'tokens_seen', 'created_at']).where('run_id', '=', view.run.id).where('sha256', 'in', shas).execute()
  const checkpointOf = new Map(roundRows.map((r) => [r.number, r.result_checkpoint]))

  const rows: StatementRow[] = (maxRows === undefined ? counted : counted.slice(0, maxRows)).map(({ row, hours, tokens, share }) => ({
    seq: row.seq, round: row.round, at: row.createdAt.toISOString(), nodeName: row.nodeName, peerId: row.peerId, organizationName: row.organizationName,
    // Rounded so a row split in two reads 0.5, not 0.5000000000000001.
    kind: row.kind, device: row.device, computeSeconds: row.computeSeconds, hours, tokens, share: Number(share.toFixed(9)), checkpoint: checkpointOf.get(row.round) ?? null
  }))

  const nodes = new Map<string, PledgeStatement['nodes'][number]>()
  const labs = new Map<string, PledgeStatement['labs'][number] & { peers: Set<string> }>()
  for (const { row, hours, tokens } of counted) {
    const n = nodes.get(row.peerId) ?? { nodeId: row.nodeId, name: row.nodeName, peerId: row.peerId, organizationName: row.organizationName, kind: row.kind, device: row.device, tokens: 0, hours: 0, reports: 0 }
    n.tokens += tokens; n.hours += hours; n.reports++
    nodes.set(row.peerId, n)
    const key = row.organizationId ?? 'unknown'
    const l = labs.get(key) ?? { organizationId: row.organizationId, name: row.organizationName, tokens: 0, gpuHours: 0, cpuCoreHours: 0, nodes: 0, reports: 0, peers: new Set<string>() }
    l.tokens += tokens; l.reports++
    if (row.kind === 'gpu') l.gpuHours += hours
    else l.cpuCoreHours += hours
    l.peers.add(row.peerId)
    labs.set(key, l)
  }

  // Summed by round in one pass: filtering every counted row for each round made a money
  // pledge's statement (it counts every row after it) cost rounds × rows.
  const tokensOf = new Map<number, number>()
  for (const c of counted) tokensOf.set(c.row.round, (tokensOf.get(c.row.round) ?? 0) + c.tokens)
  const keptBySha = new Map(kept.map((k) => [k.sha256, k]))
  const checkpoints: PledgeStatement['checkpoints'] = rounds.map((round) => {
    const sha = checkpointOf.get(round) ?? null
    const row = sha === null ? undefined : keptBySha.get(sha)
    const tokens = tokensOf.get(round) ?? 0
    if (sha === null) return { round, sha256: null, state: 'pending', valLoss: null, tokensSeen: null, createdAt: null, tokens }
    if (row === undefined) return { round, sha256: sha, state: 'not kept', valLoss: null, tokensSeen: null, createdAt: null, tokens }
    return { round, sha256: sha, state: 'written', valLoss: row.val_loss, tokensSeen: Number(row.tokens_seen), createdAt: row.created_at.toISOString(), tokens }
  })

  const orgSince = pledge.organizationId === null || !isComputePledge(pledge.kind)
    ? null
    : hoursByKind(view.deliveries.filter((d) => d.organizationId === pledge.organizationId && d.createdAt.getTime() > pledge.createdAt.getTime()))
  const hours = hoursByKind(counted.map((c) => ({ kind: c.row.kind, hours: c.hours })))
  return {
    pledge: { ...pledgeLine(view, pledge), runName: view.run.name, runStatus: view.run.status },
    scope: isComputePledge(pledge.kind) ? 'compute' : 'run',
    rule: RULES[pledge.kind],
    totals: { tokens: counted.reduce((a, c) => a + c.tokens, 0), ...hours, reports: counted.length },
    organizationSincePledge: orgSince,
    labs: [...labs.values()].map(({ peers, ...l }) => ({ ...l, nodes: peers.size })).sort((a, b) => b.tokens - a.tokens),
    nodes: [...nodes.values()].sort((a, b) => b.tokens - a.tokens),
    checkpoints,
    run: goalProgress(view),
    rows
  }
}

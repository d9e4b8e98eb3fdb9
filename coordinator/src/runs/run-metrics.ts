import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database, PledgeKind } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import { deviceHours } from '../ledger/device-hours.ts'
import type { DeviceClaim, DeviceKind } from '../ledger/device-hours.ts'

/** A run's history as the run page charts it; every series is per closed round or per pledge, oldest first. */
export interface RunMetrics {
  /** unigram baseline loss (nats/token) on the validation windows; null until it can be computed */
  baselineLoss: number | null
  rounds: Array<{
    round: number
    openedAt: string
    closedAt: string
    seconds: number
    tokens: number
    /** tokens the round added ÷ its wall-clock duration: the whole swarm's speed */
    tokensPerSecond: number
    /** nodes given work in the round */
    nodes: number
    /** nodes whose report was accepted */
    reported: number
  }>
  /** organizations that contributed, most tokens first: the order of `labRounds[].tokens` */
  labs: Array<{ organizationId: string | null, name: string, tokens: number }>
  /** accepted tokens per lab in each round (not cumulative) */
  labRounds: Array<{ round: number, at: string, tokens: number[] }>
  /** every pledge, oldest first */
  pledges: Array<{ at: string, kind: PledgeKind, amount: number }>
  /** device-hours the run's nodes delivered in each round (not cumulative) */
  delivered: Array<{ round: number, at: string, gpuHours: number, cpuCoreHours: number }>
  goals: { fundingGoalUsd: number | null, computeGoalGpuHours: number | null }
}

/** GPUs a node's profile lists (what device-hours.ts reads of `gpus`), 0 for none or no node. */
const LISTED_GPUS = sql<number>`case when jsonb_typeof(nodes.hardware->'gpus') = 'array' then jsonb_array_length(nodes.hardware->'gpus') else 0 end`
/** The CPU cores a node's profile claims, when it is a number. */
const CLAIMED_CORES = sql<number | null>`case when jsonb_typeof(nodes.hardware->'cpuCores') = 'number' then (nodes.hardware->>'cpuCores')::float8 end`
/** Compute-seconds as deviceHours counts them: a row's that is not a positive finite number counts as 0. */
const COUNTED_SECONDS = sql<number>`sum(case when ledger.compute_seconds > 0 and ledger.compute_seconds < 'Infinity'::float8 then ledger.compute_seconds else 0 end)`

/**
 * A run's accepted tokens and device-hours per round and organization, summed in the database
 * over rows that count alike (same executor, device counts and node profile), so this public read
 * hands the event loop rounds × labs × a few groups, not every row: a run's page refetches it on
 * every change, and a batch asked for it 16 times (loading 94,500 rows took a second each).
 */
async function deliveredByRoundAndLab (db: Kysely<Database>, runId: string): Promise<Array<{ round: number, organizationId: string | null, organizationName: string, tokens: number, kind: DeviceKind, hours: number }>> {
  const groups = await db.selectFrom('ledger')
    .leftJoin('nodes', 'nodes.id', 'ledger.node_id')
    .leftJoin('organizations', 'organizations.id', 'ledger.organization_id')
    .select(['ledger.round', 'ledger.organization_id', 'organizations.name as organization_name', 'ledger.executor', 'ledger.devices', 'ledger.credited_devices', 'ledger.credited_cores'])
    .select([LISTED_GPUS.as('gpus'), CLAIMED_CORES.as('cpu_cores'), sql<string>`sum(ledger.tokens)`.as('tokens'), COUNTED_SECONDS.as('seconds')])
    .where('ledger.run_id', '=', runId).where('ledger.outcome', '=', 'accepted')
    .groupBy(['ledger.round', 'ledger.organization_id', 'organizations.name', 'ledger.executor', 'ledger.devices', 'ledger.credited_devices', 'ledger.credited_cores', LISTED_GPUS, CLAIMED_CORES])
    .orderBy('ledger.round')
    .execute()
  return groups.map((g) => {
    // What deviceHours reads of a profile: how many GPUs it lists, and its cores.
    const claim: Partial<DeviceClaim> = { gpus: new Array<DeviceClaim['gpus'][number]>(Number(g.gpus)), cpuCores: g.cpu_cores ?? undefined }
    const { kind, hours } = deviceHours(Number(g.seconds), claim, g.executor, g.credited_devices ?? g.devices, g.credited_cores)
    return { round: g.round, organizationId: g.organization_id, organizationName: g.organization_name ?? 'unknown organization', tokens: Number(g.tokens), kind, hours }
  })
}

/** Everything the run page's charts need except the loss curve, in one read; the baseline is passed in (it is computed and stored elsewhere). */
export async function runMetrics (db: Kysely<Database>, runId: string, baselineLoss: number | null): Promise<RunMetrics> {
  const run = await db.selectFrom('runs').select(['spec']).where('id', '=', runId).executeTakeFirst()
  if (run === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no run ${runId}`)
  const spec = run.spec as { fundingGoalUsd?: number, computeGoalGpuHours?: number }
  const rounds = await db.selectFrom('rounds').select(['id', 'number', 'opened_at', 'closed_at', 'tokens'])
    .where('run_id', '=', runId).where('status', '=', 'closed').orderBy('number').execute()
  const work = await db.selectFrom('assignments').select(['round_id', 'status']).select((eb) => eb.fn.countAll<number>().as('n'))
    .where('run_id', '=', runId).groupBy(['round_id', 'status']).execute()
  const deliveries = await deliveredByRoundAndLab(db, runId)
  const pledges = await db.selectFrom('pledges').select(['created_at', 'kind', 'amount']).where('run_id', '=', runId).orderBy('created_at').execute()

  // Each row is looked at once, grouped by its round: scanning every row for every round made
  // this public read cost rounds × rows.
  const workOf = new Map<string, { nodes: number, reported: number }>()
  for (const w of work) {
    const counts = workOf.get(w.round_id) ?? { nodes: 0, reported: 0 }
    counts.nodes += Number(w.n)
    if (w.status === 'accepted') counts.reported += Number(w.n)
    workOf.set(w.round_id, counts)
  }
  const labTotals = new Map<string, { organizationId: string | null, name: string, tokens: number }>()
  for (const d of deliveries) {
    const key = d.organizationId ?? 'unknown'
    const lab = labTotals.get(key) ?? { organizationId: d.organizationId, name: d.organizationName, tokens: 0 }
    lab.tokens += d.tokens
    labTotals.set(key, lab)
  }
  const labs = [...labTotals.values()].sort((a, b) => b.tokens - a.tokens || a.name.localeCompare(b.name))
  const labIndex = new Map(labs.map((l, i) => [l.organizationId ?? 'unknown', i]))
  const perRound = new Map<number, { labTokens: number[], gpuHours: number, cpuCoreHours: number }>()
  for (const d of deliveries) {
    let sums = perRound.get(d.round)
    if (sums === undefined) {
      sums = { labTokens: labs.map(() => 0), gpuHours: 0, cpuCoreHours: 0 }
      perRound.set(d.round, sums)
    }
    sums.labTokens[labIndex.get(d.organizationId ?? 'unknown')!]! += d.tokens
    if (d.kind === 'gpu') sums.gpuHours += d.hours
    else sums.cpuCoreHours += d.hours
  }

  return {
    baselineLoss,
    rounds: rounds.map((r) => {
      const seconds = Math.max(0.001, (r.closed_at!.getTime() - r.opened_at.getTime()) / 1000)
      const counts = workOf.get(r.id) ?? { nodes: 0, reported: 0 }
      return {
        round: r.number,
        openedAt: r.opened_at.toISOString(),
        closedAt: r.closed_at!.toISOString(),
        seconds,
        tokens: Number(r.tokens),
        tokensPerSecond: Number(r.tokens) / seconds,
        nodes: counts.nodes,
        reported: counts.reported
      }
    }),
    labs,
    labRounds: rounds.map((r) => ({ round: r.number, at: r.closed_at!.toISOString(), tokens: perRound.get(r.number)?.labTokens ?? labs.map(() => 0) })),
    pledges: pledges.map((p) => ({ at: p.created_at.toISOString(), kind: p.kind, amount: p.amount })),
    delivered: rounds.map((r) => {
      const sums = perRound.get(r.number)
      return { round: r.number, at: r.closed_at!.toISOString(), gpuHours: sums?.gpuHours ?? 0, cpuCoreHours: sums?.cpuCoreHours ?? 0 }
    }),
    goals: { fundingGoalUsd: spec.fundingGoalUsd ?? null, computeGoalGpuHours: spec.computeGoalGpuHours ?? null }
  }
}

import { z } from 'zod'
import type { Kysely } from 'kysely'
import type { CodecName } from '@barnraise/protocol'
import type { Database } from '../../db/schema.ts'
import { LEDGER_PAGE_MAX, readLedgerPage } from '../../ledger/ledger.ts'
import { deviceHours } from '../../ledger/device-hours.ts'
import type { DeviceKind } from '../../ledger/device-hours.ts'
import { publicProcedure, router } from '../trpc.ts'

export const ledgerRouter = router({
  /**
   * One page of a run's ledger rows in chain order, for display and in-browser verification: the
   * rows after `afterSeq` (0 or absent: from the first), at most `limit` (and LEDGER_PAGE_MAX)
   * and about 1 MiB of them. Ask again with `afterSeq: nextSeq` until `done`; a reader that has
   * the ledger asks only for the rows after its last one.
   */
  entries: publicProcedure.input(z.object({
    runId: z.string().uuid('a run id is a UUID, as in /ledger/<id>'),
    afterSeq: z.number().int('afterSeq is a row\'s seq, a whole number').min(0, 'afterSeq is a row\'s seq, 0 or more').max(Number.MAX_SAFE_INTEGER).optional(),
    limit: z.number().int('limit is a whole number of rows').min(1, 'limit is at least 1 row').max(LEDGER_PAGE_MAX, `limit is at most ${LEDGER_PAGE_MAX} rows; ask for the next page with afterSeq`).optional()
  })).query(async ({ ctx, input }) => await readLedgerPage(ctx.db, input.runId, { afterSeq: input.afterSeq, limit: input.limit })),
  /**
   * Contributions per organization and per node for a run. `computeHours` is wall-clock
   * compute-seconds ÷ 3600 (for throughput); `gpuHours` and `cpuCoreHours` count the same time by
   * what the node says it is (see ledger/device-hours.ts). `firstReportSeconds` is how long a
   * node took from its first work unit of the run to its first accepted report (null: none yet).
   * `links` has one entry for each node handed a unit of the run, reported or not: its report
   * upload rate as the coordinator measured it (bytes a second, null until measured) and the
   * codec of its latest unit in this run (the run's own unless a slow link was moved to a smaller one).
   */
  contributions: publicProcedure.input(z.object({ runId: z.string().uuid() })).query(async ({ ctx, input }) => {
    const rows = await ctx.db.selectFrom('ledger')
      .leftJoin('nodes', 'nodes.id', 'ledger.node_id')
      .leftJoin('organizations', 'organizations.id', 'ledger.organization_id')
      .select(['ledger.node_id', 'ledger.peer_id', 'nodes.name as node_name', 'ledger.organization_id', 'organizations.name as organization_name', 'ledger.outcome', 'ledger.executor', 'ledger.devices', 'ledger.credited_devices', 'ledger.credited_cores'])
      .select((eb) => [eb.fn.sum<number>('ledger.tokens').as('tokens'), eb.fn.sum<number>('ledger.compute_seconds').as('compute_seconds'), eb.fn.countAll<number>().as('n')])
      .where('ledger.run_id', '=', input.runId)
      .groupBy(['ledger.node_id', 'ledger.peer_id', 'nodes.name', 'ledger.organization_id', 'organizations.name', 'ledger.outcome', 'ledger.executor', 'ledger.devices', 'ledger.credited_devices', 'ledger.credited_cores'])
      .execute()
    const nodeIds = [...new Set(rows.map((r) => r.node_id).filter((id): id is string => id !== null))]
    const hardware = new Map(nodeIds.length === 0 ? [] : (await ctx.db.selectFrom('nodes').select(['id', 'hardware']).where('id', 'in', nodeIds).execute()).map((n) => [n.id, n.hardware]))
    const firstReport = await timeToFirstReport(ctx.db, input.runId)
    const byNode = new Map<string, { nodeId: string | null, peerId: string, nodeName: string, organizationId: string | null, organizationName: string, kind: DeviceKind, tokens: number, computeHours: number, gpuHours: number, cpuCoreHours: number, accepted: number, refused: number, firstReportSeconds: number | null }>()
    for (const r of rows) {
      const counted = deviceHours(Number(r.compute_seconds), r.node_id === null ? null : hardware.get(r.node_id), r.executor, r.credited_devices ?? r.devices, r.credited_cores)
      const entry = byNode.get(r.peer_id) ?? { nodeId: r.node_id, peerId: r.peer_id, nodeName: r.node_name ?? r.peer_id.slice(-8), organizationId: r.organization_id, organizationName: r.organization_name ?? 'unknown', kind: counted.kind, tokens: 0, computeHours: 0, gpuHours: 0, cpuCoreHours: 0, accepted: 0, refused: 0, firstReportSeconds: r.node_id === null ? null : firstReport.get(r.node_id) ?? null }
      entry.tokens += Number(r.tokens)
      entry.computeHours += Number(r.compute_seconds) / 3600
      if (counted.kind === 'gpu') entry.gpuHours += counted.hours
      else entry.cpuCoreHours += counted.hours
      if (r.outcome === 'accepted') entry.accepted += Number(r.n)
      else entry.refused += Number(r.n)
      byNode.set(r.peer_id, entry)
    }
    const nodes = [...byNode.values()]
    const orgs = new Map<string, { organizationId: string | null, organizationName: string, tokens: number, computeHours: number, gpuHours: number, cpuCoreHours: number, accepted: number, refused: number, nodes: number }>()
    for (const n of nodes) {
      const key = n.organizationId ?? 'unknown'
      const o = orgs.get(key) ?? { organizationId: n.organizationId, organizationName: n.organizationName, tokens: 0, computeHours: 0, gpuHours: 0, cpuCoreHours: 0, accepted: 0, refused: 0, nodes: 0 }
      o.tokens += n.tokens; o.computeHours += n.computeHours; o.gpuHours += n.gpuHours; o.cpuCoreHours += n.cpuCoreHours; o.accepted += n.accepted; o.refused += n.refused; o.nodes++
      orgs.set(key, o)
    }
    return { nodes, organizations: [...orgs.values()], links: await nodeLinks(ctx.db, input.runId) }
  })
})

/** What the run page says of each node's link: for every node with a unit of the run, its measured upload rate and its latest unit's codec. */
async function nodeLinks (db: Kysely<Database>, runId: string): Promise<Array<{ nodeId: string, uploadBytesPerSecond: number | null, codec: CodecName }>> {
  const run = await db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirst()
  if (run === undefined) return []
  const latest = await db.selectFrom('assignments').innerJoin('nodes', 'nodes.id', 'assignments.node_id')
    .distinctOn('assignments.node_id')
    .select(['assignments.node_id', 'assignments.codec', 'nodes.upload_bytes_per_second'])
    .where('assignments.run_id', '=', runId)
    .orderBy('assignments.node_id').orderBy('assignments.created_at', 'desc')
    .execute()
  // A null codec is the run's own (assignments.codec is written only when it differs).
  return latest.map((r) => ({ nodeId: r.node_id, uploadBytesPerSecond: r.upload_bytes_per_second === null ? null : Number(r.upload_bytes_per_second), codec: r.codec ?? run.spec.codec }))
}

/** Seconds from each node's first unit of the run to its first accepted report, by node id. */
async function timeToFirstReport (db: Kysely<Database>, runId: string): Promise<Map<string, number>> {
  const firstUnit = await db.selectFrom('assignments').select('node_id').select((eb) => eb.fn.min('created_at').as('at'))
    .where('run_id', '=', runId).groupBy('node_id').execute()
  const firstAccepted = await db.selectFrom('ledger').select('node_id').select((eb) => eb.fn.min('created_at').as('at'))
    .where('run_id', '=', runId).where('outcome', '=', 'accepted').where('node_id', 'is not', null).groupBy('node_id').execute()
  const started = new Map(firstUnit.map((r) => [r.node_id, new Date(r.at as unknown as string | Date).getTime()]))
  const out = new Map<string, number>()
  for (const r of firstAccepted) {
    const from = started.get(r.node_id!)
    if (from !== undefined) out.set(r.node_id!, Math.max(0, (new Date(r.at as unknown as string | Date).getTime() - from) / 1000))
  }
  return out
}

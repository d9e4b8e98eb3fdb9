import { z } from 'zod'
import { readLedger } from '../../ledger/ledger.ts'
import { publicProcedure, router } from '../trpc.ts'

export const ledgerRouter = router({
  /** A run's ledger rows in chain order, for display and in-browser verification. */
  entries: publicProcedure.input(z.object({ runId: z.string().uuid() })).query(async ({ ctx, input }) => await readLedger(ctx.db, input.runId)),
  /** Contributions per organization and per node for a run. */
  contributions: publicProcedure.input(z.object({ runId: z.string().uuid() })).query(async ({ ctx, input }) => {
    const rows = await ctx.db.selectFrom('ledger')
      .leftJoin('nodes', 'nodes.id', 'ledger.node_id')
      .leftJoin('organizations', 'organizations.id', 'ledger.organization_id')
      .select(['ledger.node_id', 'ledger.peer_id', 'nodes.name as node_name', 'ledger.organization_id', 'organizations.name as organization_name', 'ledger.outcome'])
      .select((eb) => [eb.fn.sum<number>('ledger.tokens').as('tokens'), eb.fn.sum<number>('ledger.compute_seconds').as('compute_seconds'), eb.fn.countAll<number>().as('n')])
      .where('ledger.run_id', '=', input.runId)
      .groupBy(['ledger.node_id', 'ledger.peer_id', 'nodes.name', 'ledger.organization_id', 'organizations.name', 'ledger.outcome'])
      .execute()
    const byNode = new Map<string, { nodeId: string | null, peerId: string, nodeName: string, organizationId: string | null, organizationName: string, tokens: number, computeHours: number, accepted: number, refused: number }>()
    for (const r of rows) {
      const entry = byNode.get(r.peer_id) ?? { nodeId: r.node_id, peerId: r.peer_id, nodeName: r.node_name ?? r.peer_id.slice(-8), organizationId: r.organization_id, organizationName: r.organization_name ?? 'unknown', tokens: 0, computeHours: 0, accepted: 0, refused: 0 }
      entry.tokens += Number(r.tokens)
      entry.computeHours += Number(r.compute_seconds) / 3600
      if (r.outcome === 'accepted') entry.accepted += Number(r.n)
      else entry.refused += Number(r.n)
      byNode.set(r.peer_id, entry)
    }
    const nodes = [...byNode.values()]
    const orgs = new Map<string, { organizationId: string | null, organizationName: string, tokens: number, computeHours: number, accepted: number, refused: number, nodes: number }>()
    for (const n of nodes) {
      const key = n.organizationId ?? 'unknown'
      const o = orgs.get(key) ?? { organizationId: n.organizationId, organizationName: n.organizationName, tokens: 0, computeHours: 0, accepted: 0, refused: 0, nodes: 0 }
      o.tokens += n.tokens; o.computeHours += n.computeHours; o.accepted += n.accepted; o.refused += n.refused; o.nodes++
      orgs.set(key, o)
    }
    return { nodes, organizations: [...orgs.values()] }
  })
})

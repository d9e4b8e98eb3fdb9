import { z } from 'zod'
import { listNodes, nodeForViewer, revokeNode } from '../../nodes/nodes.ts'
import { releaseNode } from '../../nodes/reputation.ts'
import { protectedProcedure, publicProcedure, roleProcedure, router } from '../trpc.ts'
import type { ApiContext } from '../context.ts'

export const nodesRouter = router({
  /**
   * Every enrolled node with its hardware and whether it is connected now. Hostnames,
   * platforms, driver and agent versions only reach the node's own lab and admins.
   */
  list: publicProcedure
    .input(z.object({ organizationId: z.string().uuid().optional() }).optional())
    .query(async ({ ctx, input }) => {
      const nodes = await listNodes(ctx.db, (peerId) => ctx.presence.isOnline(peerId), input?.organizationId)
      const reviewable = await reviewableNodes(ctx)
      return nodes.map((n) => ({
        ...nodeForViewer(n, ctx.user),
        status: n.online ? (ctx.presence.get(n.peerId)?.status ?? 'idle') : 'offline',
        mayReview: reviewable(n)
      }))
    }),
  /** Releases a quarantined node after review (an admin, its lab admin, or an organizer of a run it reported to). */
  release: protectedProcedure.input(z.object({ id: z.string().uuid() })).mutation(async ({ ctx, input }) => {
    await releaseNode(ctx.db, ctx.user, input.id, !ctx.openOrganizing)
    ctx.log.info('node released from quarantine', { nodeId: input.id, by: ctx.user.id })
    ctx.changes.publish('nodes')
    return { ok: true as const }
  }),
  /** A lab admin revokes one of their organization's nodes (an admin, any node). */
  revoke: roleProcedure('lab_admin').input(z.object({ id: z.string().uuid() })).mutation(async ({ ctx, input }) => {
    // A lab admin without an organization matches no node: the zero uuid is nobody's.
    const orgScope = ctx.user!.roles.includes('admin') ? null : ctx.user!.organizationId ?? '00000000-0000-0000-0000-000000000000'
    await revokeNode(ctx.db, input.id, orgScope)
    const node = await ctx.db.selectFrom('nodes').select('peer_id').where('id', '=', input.id).executeTakeFirst()
    if (node !== undefined) {
      // Drop its live connection so it stops immediately, not at its next heartbeat; and tell
      // the other agents, at their next heartbeat, to stop serving it blob blocks.
      ctx.presence.disconnect(node.peer_id)
      ctx.revocations.add(node.peer_id)
    }
    ctx.changes.publish('nodes')
    return { ok: true as const }
  })
})

/** Which nodes the viewer may release from quarantine (see nodes/reputation.ts mayReviewNode), decided for the whole list at once. */
async function reviewableNodes (ctx: ApiContext): Promise<(node: { id: string, organizationId: string }) => boolean> {
  const viewer = ctx.user
  if (viewer === null) return () => false
  if (viewer.roles.includes('admin')) return () => true
  const theirRuns = viewer.roles.includes('organizer') && !ctx.openOrganizing
    ? new Set((await ctx.db.selectFrom('ledger').innerJoin('runs', 'runs.id', 'ledger.run_id').select('ledger.node_id').distinct()
      .where('runs.created_by', '=', viewer.id).execute()).map((r) => r.node_id))
    : new Set<string | null>()
  return (node) => theirRuns.has(node.id)
}

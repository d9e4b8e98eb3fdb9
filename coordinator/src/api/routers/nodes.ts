import { z } from 'zod'
import { listNodes, nodeForViewer, revokeNode } from '../../nodes/nodes.ts'
import { publicProcedure, roleProcedure, router } from '../trpc.ts'

export const nodesRouter = router({
  /**
   * Every enrolled node with its hardware and whether it is connected now. Hostnames,
   * platforms, driver and agent versions only reach the node's own lab and admins.
   */
  list: publicProcedure
    .input(z.object({ organizationId: z.string().uuid().optional() }).optional())
    .query(async ({ ctx, input }) => {
      const nodes = await listNodes(ctx.db, (peerId) => ctx.presence.isOnline(peerId), input?.organizationId)
      return nodes.map((n) => ({ ...nodeForViewer(n, ctx.user), status: n.online ? (ctx.presence.get(n.peerId)?.status ?? 'idle') : 'offline' }))
    }),
  /** A lab admin revokes one of their organization's nodes (an admin, any node). */
  revoke: roleProcedure('lab_admin').input(z.object({ id: z.string().uuid() })).mutation(async ({ ctx, input }) => {
    // A lab admin without an organization matches no node: the zero uuid is nobody's.
    const orgScope = ctx.user!.roles.includes('admin') ? null : ctx.user!.organizationId ?? '00000000-0000-0000-0000-000000000000'
    await revokeNode(ctx.db, input.id, orgScope)
    const node = await ctx.db.selectFrom('nodes').select('peer_id').where('id', '=', input.id).executeTakeFirst()
    // Drop its live connection so it stops immediately, not at its next heartbeat.
    if (node !== undefined) ctx.presence.disconnect(node.peer_id)
    ctx.changes.publish('nodes')
    return { ok: true as const }
  })
})

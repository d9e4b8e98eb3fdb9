import { z } from 'zod'
import { listNodes } from '../../nodes/nodes.ts'
import { publicProcedure, router } from '../trpc.ts'

export const nodesRouter = router({
  /** Every enrolled node with its hardware and whether it is connected now. */
  list: publicProcedure
    .input(z.object({ organizationId: z.string().uuid().optional() }).optional())
    .query(async ({ ctx, input }) => {
      const nodes = await listNodes(ctx.db, (peerId) => ctx.presence.isOnline(peerId), input?.organizationId)
      return nodes.map((n) => ({ ...n, status: n.online ? (ctx.presence.get(n.peerId)?.status ?? 'idle') : 'offline' }))
    })
})

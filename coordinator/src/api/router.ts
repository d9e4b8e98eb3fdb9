import { router, publicProcedure } from './trpc.ts'
import { nodesRouter } from './routers/nodes.ts'
import { runsRouter } from './routers/runs.ts'

/** The whole API; the dashboard imports only its type. */
export const appRouter = router({
  health: publicProcedure.query(() => ({ ok: true as const })),
  nodes: nodesRouter,
  runs: runsRouter
})

export type AppRouter = typeof appRouter

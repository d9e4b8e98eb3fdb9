import { router, publicProcedure } from './trpc.ts'
import { nodesRouter } from './routers/nodes.ts'
import { runsRouter } from './routers/runs.ts'
import { liveRouter } from './routers/live.ts'

/** The whole API; the dashboard imports only its type. */
export const appRouter = router({
  health: publicProcedure.query(() => ({ ok: true as const })),
  nodes: nodesRouter,
  runs: runsRouter,
  live: liveRouter
})

export type AppRouter = typeof appRouter

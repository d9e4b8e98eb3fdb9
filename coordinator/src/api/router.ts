import { router, publicProcedure } from './trpc.ts'
import { authRouter } from './routers/auth.ts'
import { nodesRouter } from './routers/nodes.ts'
import { runsRouter } from './routers/runs.ts'
import { labsRouter } from './routers/labs.ts'
import { ledgerRouter } from './routers/ledger.ts'
import { pledgesRouter } from './routers/pledges.ts'
import { liveRouter } from './routers/live.ts'
import { metricsRouter } from './routers/metrics.ts'
import { peopleRouter } from './routers/people.ts'
import { datasetsRouter } from './routers/datasets.ts'

/** The whole API, one router per domain; the dashboard imports only its type. */
export const appRouter = router({
  /** Liveness, and the libp2p addresses agents join with. */
  health: publicProcedure.query(({ ctx }) => ({ ok: true as const, multiaddrs: ctx.multiaddrs() })),
  auth: authRouter,
  nodes: nodesRouter,
  runs: runsRouter,
  datasets: datasetsRouter,
  labs: labsRouter,
  people: peopleRouter,
  ledger: ledgerRouter,
  pledges: pledgesRouter,
  metrics: metricsRouter,
  live: liveRouter
})

export type AppRouter = typeof appRouter

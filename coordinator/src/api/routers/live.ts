import { publicProcedure, router } from '../trpc.ts'

export const liveRouter = router({
  /** Streams change notifications (SSE); clients refetch what the topic names. */
  changes: publicProcedure.subscription(async function * ({ ctx, signal }) {
    try {
      yield * ctx.changes.subscribe(signal)
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err
    }
  })
})

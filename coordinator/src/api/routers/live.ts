import { publicProcedure, router } from '../trpc.ts'

export const liveRouter = router({
  /** Streams change notifications (SSE); clients refetch what the topic names. Capped per address and in total. */
  changes: publicProcedure.subscription(({ ctx, signal }) => {
    const stream = ctx.changes.subscribe(signal, ctx.clientAddress)
    return (async function * () {
      try {
        yield * stream
      } catch (err) {
        if ((err as Error).name !== 'AbortError') throw err
      }
    })()
  })
})

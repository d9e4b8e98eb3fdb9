import { z } from 'zod'
import { publicProcedure, router } from '../trpc.ts'
import { runMetrics } from '../../runs/run-metrics.ts'
import { runUnigramBaseline } from '../../runs/unigram-baseline.ts'

export const metricsRouter = router({
  /**
   * A run's history for its charts: throughput and nodes per round, tokens per lab per round,
   * pledges and delivered device-hours over time, goals, and the unigram baseline loss.
   */
  run: publicProcedure.input(z.object({ runId: z.string().uuid('a run id is a UUID, as in /runs/<id>') })).query(async ({ ctx, input }) => {
    // The baseline only draws a line; a run whose shards cannot be read still gets its charts.
    const baseline = await runUnigramBaseline(ctx, input.runId).catch((err: unknown) => {
      ctx.log.error('unigram baseline failed', { runId: input.runId, err })
      return null
    })
    return await runMetrics(ctx.db, input.runId, baseline)
  })
})

import { z } from 'zod'
import { TRPCError } from '@trpc/server'
import { protectedProcedure, publicProcedure, roleProcedure, router } from '../trpc.ts'

export const pledgesRouter = router({
  /** Pledged money and GPU-hours for a run against its goals, and GPU-hours delivered per the ledger. */
  forRun: publicProcedure.input(z.object({ runId: z.string().uuid() })).query(async ({ ctx, input }) => {
    const run = await ctx.db.selectFrom('runs').select(['spec']).where('id', '=', input.runId).executeTakeFirst()
    if (run === undefined) throw new TRPCError({ code: 'NOT_FOUND', message: `no run ${input.runId}` })
    const spec = run.spec as { computeGoalGpuHours?: number, fundingGoalUsd?: number }
    const pledges = await ctx.db.selectFrom('pledges').leftJoin('users', 'users.id', 'pledges.user_id')
      .select(['pledges.id', 'pledges.kind', 'pledges.amount', 'pledges.note', 'pledges.created_at', 'users.display_name'])
      .where('pledges.run_id', '=', input.runId).orderBy('pledges.created_at', 'desc').execute()
    const delivered = await ctx.db.selectFrom('ledger').select((eb) => eb.fn.coalesce(eb.fn.sum<number>('compute_seconds'), eb.lit(0)).as('s'))
      .where('run_id', '=', input.runId).where('outcome', '=', 'accepted').executeTakeFirstOrThrow()
    const sum = (kind: string): number => pledges.filter((p) => p.kind === kind).reduce((a, p) => a + p.amount, 0)
    return {
      fundingGoalUsd: spec.fundingGoalUsd ?? null,
      computeGoalGpuHours: spec.computeGoalGpuHours ?? null,
      pledgedUsd: sum('usd'),
      pledgedGpuHours: sum('gpu_hours'),
      deliveredGpuHours: Number(delivered.s) / 3600,
      pledges: pledges.map((p) => ({ id: p.id, kind: p.kind, amount: p.amount, note: p.note, by: p.display_name ?? 'someone', createdAt: p.created_at.toISOString() }))
    }
  }),
  /** A funder pledges money (USD) or GPU-hours to a run; recorded only, no payment is taken. */
  create: roleProcedure('funder')
    .input(z.object({
      runId: z.string().uuid(),
      kind: z.enum(['usd', 'gpu_hours']),
      amount: z.number({ message: 'enter an amount' }).positive('the amount must be more than zero').max(1e9, 'that is more than we can record'),
      note: z.string().trim().max(500).optional()
    }))
    .mutation(async ({ ctx, input }) => {
      const run = await ctx.db.selectFrom('runs').select('status').where('id', '=', input.runId).executeTakeFirst()
      if (run === undefined) throw new TRPCError({ code: 'NOT_FOUND', message: `no run ${input.runId}` })
      if (run.status === 'completed' || run.status === 'failed') throw new TRPCError({ code: 'CONFLICT', message: `this run is ${run.status}; pledge to an active run` })
      const row = await ctx.db.insertInto('pledges').values({
        run_id: input.runId, user_id: ctx.user!.id, organization_id: ctx.user!.organizationId, kind: input.kind, amount: input.amount, note: input.note ?? null
      }).returning('id').executeTakeFirstOrThrow()
      ctx.changes.publish('pledges', input.runId)
      return { id: row.id }
    }),
  /** The signed-in person's pledges, with how much of each run's compute goal the ledger shows delivered. */
  mine: protectedProcedure.query(async ({ ctx }) => {
    const rows = await ctx.db.selectFrom('pledges').innerJoin('runs', 'runs.id', 'pledges.run_id')
      .select(['pledges.id', 'pledges.run_id', 'runs.name as run_name', 'runs.status as run_status', 'pledges.kind', 'pledges.amount', 'pledges.note', 'pledges.created_at'])
      .where('pledges.user_id', '=', ctx.user!.id).orderBy('pledges.created_at', 'desc').execute()
    const runIds = [...new Set(rows.map((r) => r.run_id))]
    const delivered = runIds.length === 0
      ? []
      : await ctx.db.selectFrom('ledger').select(['run_id', 'organization_id']).select((eb) => eb.fn.sum<number>('compute_seconds').as('s'))
        .where('run_id', 'in', runIds).where('outcome', '=', 'accepted').groupBy(['run_id', 'organization_id']).execute()
    const hours = (runId: string, orgId?: string | null): number =>
      delivered.filter((d) => d.run_id === runId && (orgId === undefined || d.organization_id === orgId)).reduce((a, d) => a + Number(d.s), 0) / 3600
    const orgId = ctx.user!.organizationId
    return rows.map((r) => ({
      id: r.id, runId: r.run_id, runName: r.run_name, runStatus: r.run_status, kind: r.kind, amount: r.amount, note: r.note,
      createdAt: r.created_at.toISOString(),
      runDeliveredGpuHours: hours(r.run_id),
      // A GPU-hour pledge is fulfilled by the accepted ledger rows of the pledger's organization.
      fulfilledGpuHours: r.kind === 'gpu_hours' && orgId !== null ? Math.min(r.amount, hours(r.run_id, orgId)) : null
    }))
  })
})

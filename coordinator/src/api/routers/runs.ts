import { publicProcedure, router } from '../trpc.ts'

export const runsRouter = router({
  /** Runs, newest first. */
  list: publicProcedure.query(async ({ ctx }) => {
    const rows = await ctx.db.selectFrom('runs')
      .select(['id', 'name', 'status', 'created_at', 'updated_at'])
      .orderBy('created_at', 'desc')
      .execute()
    return rows.map((r) => ({ id: r.id, name: r.name, status: r.status, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString() }))
  })
})

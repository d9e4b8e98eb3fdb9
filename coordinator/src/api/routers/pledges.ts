import { z } from 'zod'
import { plainTextProblem } from '@barnraise/protocol'
import { TRPCError } from '@trpc/server'
import { protectedProcedure, publicProcedure, roleProcedure, router } from '../trpc.ts'
import { STATEMENT_ROWS_LISTED, pledgeStatement, pledgesOfUser, runPledgeSummary } from '../../pledges/pledge-statements.ts'
import { takeOrRefuse } from '../../limits/api-rates.ts'
import { CoordinatorError } from '../../errors.ts'
import { lockOwner } from '../../runs/runs.ts'

/** Pledges one person may make to one run: every viewer of the run loads them (a script made 16,000 in 20 s). */
export const MAX_PLEDGES_PER_PERSON_PER_RUN = 20

const KIND_WORDS = { usd: 'money', gpu_hours: 'GPU-hours', cpu_core_hours: 'CPU core-hours' } as const

export const pledgesRouter = router({
  /**
   * A run's pledges with each compute pledge's fulfilment, and its goals against what was
   * pledged and what its nodes delivered (GPU-hours and CPU core-hours kept apart).
   */
  forRun: publicProcedure.input(z.object({ runId: z.string().uuid('a run id is a UUID, as in /runs/<id>') })).query(async ({ ctx, input }) => await runPledgeSummary(ctx.db, input.runId)),
  /**
   * A funder pledges money (USD), GPU-hours or CPU core-hours to a run; recorded only, no
   * payment is taken. Compute is delivered by the pledger's organization's machines, so a
   * compute pledge needs an account with an organization.
   */
  create: roleProcedure('funder')
    .input(z.object({
      runId: z.string().uuid('a run id is a UUID, as in /runs/<id>'),
      kind: z.enum(['usd', 'gpu_hours', 'cpu_core_hours']),
      amount: z.number({ message: 'enter an amount' }).positive('the amount must be more than zero').max(1e9, 'that is more than we can record'),
      // Public beside the pledge: plain text, except that a note may run to several lines (line
      // feeds and tabs reorder and hide nothing; a page shows them as spaces).
      note: z.string().trim().max(500).superRefine((note, ctx) => {
        const problem = plainTextProblem(note, 'multi-line')
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `pledge note ${problem}`, input: note })
      }).optional()
    }))
    .mutation(async ({ ctx, input }) => {
      takeOrRefuse(ctx.rates.pledges, ctx.user.id, 'pledges')
      const run = await ctx.db.selectFrom('runs').select('status').where('id', '=', input.runId).executeTakeFirst()
      if (run === undefined) throw new TRPCError({ code: 'NOT_FOUND', message: `no run ${input.runId}` })
      if (run.status === 'completed' || run.status === 'failed') throw new TRPCError({ code: 'CONFLICT', message: `this run is ${run.status}; pledge to an active run` })
      if (input.kind !== 'usd' && ctx.user.organizationId === null) {
        throw new TRPCError({
          code: 'PRECONDITION_FAILED',
          message: `${KIND_WORDS[input.kind]} are delivered by your organization's machines, and your account has no organization; pledge money instead, or use an account that names your lab's organization`
        })
      }
      const user = ctx.user
      const row = await ctx.db.transaction().execute(async (trx) => {
        // Counted under a lock on the person, in the transaction that inserts: pledges sent at
        // once each counted the same rows before any was inserted, and all got through.
        await lockOwner(trx, 'pledges.create', user.id)
        const { made } = await trx.selectFrom('pledges').select((eb) => eb.fn.countAll<string>().as('made'))
          .where('run_id', '=', input.runId).where('user_id', '=', user.id).executeTakeFirstOrThrow()
        if (Number(made) >= MAX_PLEDGES_PER_PERSON_PER_RUN) {
          throw new CoordinatorError('ERR_QUOTA_EXCEEDED', `you have made ${Number(made)} pledges to this run, the most one person may; pledge a larger amount in one, or write to the run's organizer`)
        }
        return await trx.insertInto('pledges').values({
          run_id: input.runId, user_id: user.id, organization_id: user.organizationId, kind: input.kind, amount: input.amount, note: input.note ?? null
        }).returning('id').executeTakeFirstOrThrow()
      })
      ctx.changes.publish('pledges', input.runId)
      return { id: row.id }
    }),
  /** The signed-in person's pledges, each with what has been delivered on its behalf and its run's goals. */
  mine: protectedProcedure.query(async ({ ctx }) => await pledgesOfUser(ctx.db, ctx.user.id)),
  /**
   * What one pledge bought: tokens, hours by kind, nodes, labs and checkpoints, row by row.
   * Public, like the pledge list and the ledger it is computed from; it names no email.
   */
  statement: publicProcedure
    .input(z.object({ pledgeId: z.string().uuid('a pledge id is a UUID; copy the statement link from the Pledges page') }))
    .query(async ({ ctx, input }) => await pledgeStatement(ctx.db, input.pledgeId, { maxRows: STATEMENT_ROWS_LISTED }))
})

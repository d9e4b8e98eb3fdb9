import { z } from 'zod'
import { plainTextSchema, publicNameSchema } from '@barnraise/protocol'
import { TRPCError } from '@trpc/server'
import { publicProcedure, roleProcedure, router } from '../trpc.ts'
import { getRunDetail, listRunSummaries } from '../../runs/run-queries.ts'
import { changeRunStatus, createRun, parseRunSpec } from '../../runs/runs.ts'
import { allowedActions } from '../../runs/run-states.ts'
import { MAX_UPLOAD_BYTES, shardUploadedText } from '../../runs/datasets.ts'
import { modelPresetList } from '../../runs/run-resolution.ts'
import { maySteerRun } from '../../runs/run-access.ts'
import { takeOrRefuse } from '../../limits/api-rates.ts'
import { listRunCheckpoints } from '../../checkpoints/run-checkpoints.ts'
import { CHECKPOINT_PAGE_MAX } from '../../checkpoints/checkpoint-folder.ts'

export const runsRouter = router({
  /** Model sizes to pick from, with parameter counts, for the launch form. */
  presets: publicProcedure.query(() => modelPresetList()),
  /** Uploads text files and turns them into shards; the result goes in a spec's `dataset`. */
  uploadDataset: roleProcedure('organizer')
    .input(z.object({
      // Shown beside the runs that train on it and in shard records: plain text, as organization names are.
      name: publicNameSchema('dataset name', { max: 100, missing: 'name the dataset' }),
      files: z.array(z.object({ name: plainTextSchema({ max: 255 }), text: z.string().max(MAX_UPLOAD_BYTES) })).min(1, 'add at least one text file').max(100)
    }))
    .mutation(async ({ ctx, input }) => {
      takeOrRefuse(ctx.rates.datasetUploads, ctx.user.id, 'dataset uploads')
      return await shardUploadedText(ctx, { ...input, uploadedBy: ctx.user.id }, ctx.limits)
    }),
  /** Runs, newest first. */
  list: publicProcedure.query(async ({ ctx }) => await listRunSummaries(ctx.db)),
  /** One run with its rounds, checkpoints and loss history. */
  get: publicProcedure.input(z.object({ id: z.string().uuid() })).query(async ({ ctx, input }) => await getRunDetail(ctx.db, input.id)),
  /** A run's checkpoints with their folders' files and sizes, its retention setting and licence; under `runs` so it refreshes when a round closes. */
  checkpoints: publicProcedure.input(z.object({ id: z.string().uuid(), limit: z.number().int().min(1).max(CHECKPOINT_PAGE_MAX).optional() }))
    .query(async ({ ctx, input }) => await listRunCheckpoints(ctx, input.id, input.limit)),
  /**
   * Who created a run, whether the signed-in person may steer it, and which of start, pause,
   * resume and stop its status allows, so the dashboard shows just those controls. Read-only;
   * setStatus still checks.
   */
  access: publicProcedure.input(z.object({ id: z.string().uuid() })).query(async ({ ctx, input }) => {
    const run = await ctx.db.selectFrom('runs').leftJoin('users', 'users.id', 'runs.created_by')
      .select(['runs.created_by', 'runs.status', 'users.display_name']).where('runs.id', '=', input.id).executeTakeFirst()
    if (run === undefined) throw new TRPCError({ code: 'NOT_FOUND', message: `no run ${input.id}` })
    const user = ctx.user
    const canSteer = maySteerRun(user, run.created_by)
    return { createdBy: run.display_name ?? null, createdByMe: user !== null && run.created_by === user.id, canSteer, actions: canSteer ? allowedActions(run.status) : [] }
  }),
  /** Creates a run from a spec (validated field by field); optionally starts it. */
  create: roleProcedure('organizer')
    .input(z.object({ spec: z.unknown(), start: z.boolean().default(false) }))
    .mutation(async ({ ctx, input }) => {
      // A spec that does not parse costs nothing and is not counted: a form's typo must not use
      // up the hour's creations. What costs work (datasets, URLs) comes after the count.
      const spec = parseRunSpec(input.spec)
      takeOrRefuse(ctx.rates.runCreations, ctx.user.id, 'runs created')
      const run = await createRun(ctx, spec, ctx.user!.id, ctx.limits, { anyDataset: ctx.user!.roles.includes('admin') })
      if (input.start) await changeRunStatus(ctx.db, run.id, 'start')
      ctx.changes.publish('runs', run.id)
      return { id: run.id }
    }),
  /** start / pause / resume / stop; only the run's creator or an admin. */
  setStatus: roleProcedure('organizer')
    .input(z.object({ id: z.string().uuid(), action: z.enum(['start', 'pause', 'resume', 'stop']) }))
    .mutation(async ({ ctx, input }) => {
      const run = await ctx.db.selectFrom('runs').select('created_by').where('id', '=', input.id).executeTakeFirst()
      if (run !== undefined && !maySteerRun(ctx.user, run.created_by)) {
        throw new TRPCError({ code: 'FORBIDDEN', message: run.created_by === null ? 'this run has no owner; only an admin can steer it' : 'only the organizer who created this run (or an admin) can steer it' })
      }
      const status = await changeRunStatus(ctx.db, input.id, input.action)
      ctx.changes.publish('runs', input.id)
      return { id: input.id, status }
    })
})

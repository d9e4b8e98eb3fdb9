import { z } from 'zod'
import { plainTextSchema, publicNameSchema } from '@barnraise/protocol'
import { DATASET_FORMATS, TOKENIZER_CATALOG } from '@barnraise/datasets'
import { publicProcedure, roleProcedure, router } from '../trpc.ts'
import { takeOrRefuse } from '../../limits/api-rates.ts'
import { hasRole } from '../../accounts/roles.ts'
import { previewTokenizer } from '../../datasets/run-tokenizers.ts'

const tokenizerName = z.string().trim().min(1, 'choose a tokenizer').max(80)

export const datasetsRouter = router({
  /** The tokenizers a dataset can use without uploading one. */
  tokenizers: publicProcedure.query(() => TOKENIZER_CATALOG.map((e) => ({ ...e }))),
  /**
   * Announces a file about to be uploaded (PUT /api/datasets/<id>/file, in pieces) and how to
   * read it; tokenizing starts by itself once the last byte is in.
   */
  create: roleProcedure('organizer')
    .input(z.object({
      // Shown beside the runs that train on it and in shard records: plain text, as organization names are.
      name: publicNameSchema('dataset name', { max: 100, missing: 'name the dataset' }),
      format: z.enum(DATASET_FORMATS),
      // Both shown on the dataset's page and in its shards' records.
      field: plainTextSchema({ max: 200, trim: true }).nullable().default(null),
      tokenizer: tokenizerName,
      fileName: plainTextSchema({ min: 1, max: 255, trim: true }),
      fileBytes: z.number().int().positive('the file is empty')
    }))
    .mutation(async ({ ctx, input }) => {
      takeOrRefuse(ctx.rates.datasetUploads, ctx.user.id, 'dataset uploads')
      return await ctx.datasets.create(input, ctx.user.id)
    }),
  /** One of your datasets: upload and tokenizing progress, counts, bad rows. */
  get: roleProcedure('organizer').input(z.object({ id: z.string().uuid() }))
    .query(async ({ ctx, input }) => await ctx.datasets.get(input.id, { id: ctx.user.id, admin: hasRole(ctx.user.roles, 'admin') })),
  /** Your datasets, newest first. */
  list: roleProcedure('organizer').query(async ({ ctx }) => await ctx.datasets.list({ id: ctx.user.id })),
  /** What a tokenizer does to a sample: its ids and the text of each token (an uploaded tokenizer runs on a worker thread, with a deadline). */
  preview: roleProcedure('organizer').input(z.object({ tokenizer: tokenizerName, text: z.string().max(2000) }))
    .query(async ({ ctx, input }) => await previewTokenizer(ctx, input.tokenizer, input.text))
})

import { CODEC_NAMES } from './codecs/index.ts'
import type { CodecName } from './codecs/index.ts'
import { z } from 'zod'
import { plainTextSchema, publicNameSchema } from './plain-text.ts'

/** Where a shard the coordinator does not hold can be fetched: plain HTTP(S), checked against its sha256 after. */
export const shardUrlSchema = z.string().max(2000).regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL')

/** How a run's rounds follow each other: one at a time, or overlapped with a one-step-delayed outer update. */
export const OVERLAP_MODES = ['none', 'delayed'] as const
export type OverlapMode = typeof OVERLAP_MODES[number]

/**
 * How a round's mean goes out to the nodes that rebuild the next base themselves: `dense` in
 * int8 (or the run's codec where that is fp16 or fp32); `sparse` as a topk of the mean plus what
 * earlier broadcasts dropped (the coordinator's own error feedback), a thirty-first of int8's
 * bytes whatever the number of nodes, at some cost in loss (docs/sparse-broadcast.md).
 */
export const BROADCAST_MODES = ['dense', 'sparse'] as const
export type BroadcastMode = typeof BROADCAST_MODES[number]

/** A new run's error-feedback decay (recipe.errorFeedbackDecay); runs stored before the setting keep all of it (1). */
export const DEFAULT_ERROR_FEEDBACK_DECAY = 0.7

/**
 * The most inner steps one work unit may carry (a work unit's `recipe.innerSteps`; an agent
 * refuses a work reply with more). A run's own `innerSteps` stays within it, and so does every
 * unit the coordinator sizes or cuts for a node: a run sized by throughput gives its fastest
 * nodes up to 4× its steps, but never more than this.
 */
export const MAX_UNIT_INNER_STEPS = 100_000

/** Inner (AdamW) and outer (Nesterov) hyperparameters of a run, with DiLoCo's usual defaults. */
export const recipeSchema = z.object({
  innerSteps: z.number().int().min(1, 'at least 1 inner step').max(MAX_UNIT_INNER_STEPS).default(20),
  batchSize: z.number().int().min(1).max(4096).default(8),
  seqLen: z.number().int().min(8, 'sequence length must be at least 8').max(65_536).default(128),
  innerLr: z.number().positive('must be positive').max(1).default(3e-3),
  warmupSteps: z.number().int().nonnegative().max(10_000_000, 'at most 10,000,000 warmup steps').default(20),
  weightDecay: z.number().min(0).max(1).default(0.01),
  beta1: z.number().min(0).max(0.9999).default(0.9),
  beta2: z.number().min(0).max(0.99999).default(0.95),
  gradClip: z.number().positive().max(1e6, 'at most 1,000,000 (a clip that large never clips)').default(1.0),
  outerLr: z.number().positive().max(10).default(0.7),
  outerMomentum: z.number().min(0).max(0.999).default(0.9),
  /**
   * How much of what a node's topk reports left out it carries into its next report: each
   * round's residual is scaled by this before it is added (1 keeps all of it; SparseLoCo decays
   * it too). `pnpm bench comm` measured 0.7 best over a short run (docs/run-spec.md).
   */
  errorFeedbackDecay: z.number().min(0, 'between 0 and 1').max(1, 'between 0 and 1').default(DEFAULT_ERROR_FEEDBACK_DECAY)
})

/**
 * The most train shards a spec may name. Each is resolved when the run is made, stored in its
 * spec and read by every viewer of the run, so the list is bounded; 10,000 shards of the
 * trainer's default size hold billions of tokens, and a larger corpus fits in fewer, larger shards.
 */
export const MAX_TRAIN_SHARDS = 10_000

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/)

/** Whether a list names each hash once (a repeated shard only makes the spec larger and skews what the run samples). */
const distinct = (hashes: string[]): boolean => new Set(hashes).size === hashes.length
const NAME_EACH_SHARD_ONCE = 'name each shard once; this list repeats a sha256'

export const datasetSpecSchema = z.discriminatedUnion('source', [
  /** the King James Bible shipped in data/corpus, with its last 2% held out */
  z.object({ source: z.literal('demo-corpus') }),
  /** shards already in the coordinator's blob store (uploaded text becomes these) */
  z.object({
    source: z.literal('shards'),
    train: z.array(sha256Hex).min(1).max(MAX_TRAIN_SHARDS, `at most ${MAX_TRAIN_SHARDS} train shards`).refine(distinct, NAME_EACH_SHARD_ONCE),
    validation: sha256Hex
  }),
  /** a dataset uploaded and tokenized on this coordinator (datasets.create, then its file) */
  z.object({ source: z.literal('dataset'), id: z.string().uuid('a dataset id') }),
  /**
   * pre-tokenized shards (the trainer's shard format) served elsewhere: agents fetch each train
   * shard from its URL and check its sha256; the coordinator fetches only the validation shard
   */
  z.object({
    source: z.literal('urls'),
    /** what made the tokens: a catalogue tokenizer's name or sha256:<hex> of a tokenizer.json uploaded here */
    tokenizer: z.string().min(1).max(80),
    train: z.array(z.object({ url: shardUrlSchema, sha256: sha256Hex, tokens: z.number().int().positive() }).strict()).min(1)
      .max(MAX_TRAIN_SHARDS, `at most ${MAX_TRAIN_SHARDS} train shards`).refine((shards) => distinct(shards.map((s) => s.sha256)), NAME_EACH_SHARD_ONCE),
    validation: z.object({ url: shardUrlSchema, sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict(),
    /**
     * the document index `barnraise-agent shard` writes (documents.json): fetched and checked
     * once by the coordinator, it gives the run the same provenance as an uploaded dataset
     */
    documents: z.object({ url: shardUrlSchema, sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict().optional()
  }).strict()
])

/** Most text one small text upload (`runs.uploadDataset`) may carry; dataset files of any size go through `datasets.create` and resumable pieces. */
export const MAX_DATASET_UPLOAD_BYTES = 8 * 1024 * 1024

/** What a run keeps of its per-round checkpoints; the rest are deleted as the run goes. */
export const retentionSchema = z.object({
  keepEvery: z.number().int().min(1, 'must be at least 1 (1 keeps every checkpoint)').max(1_000_000).default(10)
}).strict()

/**
 * How a round's reports become one update, and whether each report is screened when it
 * arrives (docs/defences.md). `mean` without screening is plain DiLoCo; the other rules keep
 * every report of the open round in the coordinator's memory until it closes.
 */
export const defencesSchema = z.object({
  aggregation: z.enum(['mean', 'trimmed-mean', 'median', 'centered-clip']).default('mean'),
  /** trimmed-mean: the share of the round's token weight dropped from each end, per coordinate */
  trim: z.number().min(0).max(0.45, 'trim at most 0.45 of the weight from each end').default(0.2),
  /** scale each report down to at most this multiple of the round's median norm; null: no clipping */
  clipToMedianNorm: z.number().min(1, 'at least 1 (the median itself)').max(1000).nullable().default(null),
  /** refuse near-zero, copied, replayed and harmful reports, and loss curves that do not match, when they arrive */
  screening: z.boolean().default(false),
  /**
   * The share of each round's work units also handed to a second node with the same data, seed
   * and recipe; where both used the same executor on the same device class their deltas must
   * agree, and a pair that does not is refused, both reports, and flagged for review.
   */
  redundancy: z.number().min(0).max(0.5, 'at most half the units can be doubled').default(0)
}).strict()

/** Hugging Face licence ids are lowercase: apache-2.0, mit, cc-by-4.0, openrail++, other. */
const LICENSE_ID = /^[a-z0-9][a-z0-9.+-]*$/

export const modelSpecSchema = z.union([
  z.object({ preset: z.string().min(1).max(50) }).strict(),
  z.object({ config: z.record(z.string(), z.unknown()) }).strict()
])

/** A run as organizers write it (CLI JSON file or dashboard form). */
export const runSpecSchema = z.object({
  // Shown on public pages, the ledger's exports, model cards and organizers' terminals: plain text, as organization names are.
  name: publicNameSchema('run name', { max: 100, missing: 'give the run a name' }),
  // On the run page and the model cards, under the name: prose, so line feeds are allowed.
  description: plainTextSchema({ max: 2000, lines: 'multi-line' }).default(''),
  model: modelSpecSchema.default({ preset: 'small' }),
  dataset: datasetSpecSchema.default({ source: 'demo-corpus' }),
  recipe: recipeSchema.default(recipeSchema.parse({})),
  codec: z.enum(CODEC_NAMES).default('int8'),
  /**
   * The codecs a node of this run may be given: `codec` for every node whose measured upload
   * keeps up, a smaller one from this list for a node whose link would hold the round
   * (docs/codec-choice.md). Absent: `codec` alone. A report in any other codec is refused.
   */
  codecs: z.array(z.enum(CODEC_NAMES)).min(1, 'name at least the run\'s own codec').max(CODEC_NAMES.length, `there are only ${CODEC_NAMES.length} codecs`).optional(),
  rounds: z.number().int().min(1).max(1_000_000).optional(),
  // A quadrillion tokens: far past any run's data, and well inside what a float sums exactly.
  tokenTarget: z.number().int().min(1).max(1e15, 'at most 10^15 tokens').optional(),
  minNodes: z.number().int().min(1).max(10_000).default(1),
  maxNodes: z.number().int().min(1).max(10_000).default(64),
  roundDeadlineSeconds: z.number().int().min(5, 'a round needs at least 5 seconds').max(86_400).default(60),
  evalBatches: z.number().int().min(1).max(1000).default(4),
  seed: z.number().int().nonnegative().default(1),
  computeGoalGpuHours: z.number().nonnegative().max(1e9, 'at most 1,000,000,000 GPU-hours').optional(),
  fundingGoalUsd: z.number().nonnegative().max(1e12, 'at most $1,000,000,000,000').optional(),
  license: z.string().trim().max(64).regex(LICENSE_ID, 'use a Hugging Face licence id such as apache-2.0, mit, cc-by-4.0 or other').default('apache-2.0'),
  retention: retentionSchema.default(retentionSchema.parse({})),
  defences: defencesSchema.default(defencesSchema.parse({})),
  /**
   * `delayed`: a node starts its next unit as soon as it has sent a report, from the base one
   * outer step old, and the coordinator applies that unit's delta to the newer base (a
   * one-step-delayed outer update; docs/overlap.md). Two rounds are open at a time.
   */
  overlap: z.enum(OVERLAP_MODES).default('none'),
  /**
   * How a round's mean goes out to nodes that rebuild the next base from it (BROADCAST_MODES);
   * where the round's reports are fewer bytes than that mean, the reports go out instead.
   */
  broadcast: z.enum(BROADCAST_MODES).default('dense'),
  /**
   * `throughput`: each node's unit has the run's inner steps scaled by its measured tokens a
   * second over the round's median (¼× to 4×), so a fast GPU trains more and a laptop less and
   * their units finish together; the outer step weights each delta by its tokens. `fixed`: every
   * unit has the run's inner steps.
   */
  unitSizing: z.enum(['fixed', 'throughput']).default('fixed')
}).strict()
  .refine((s) => s.minNodes <= s.maxNodes, { message: 'cannot be more than the maximum number of nodes', path: ['minNodes'] })
  .refine((s) => s.rounds !== undefined || s.tokenTarget !== undefined, { message: 'say when to stop: a number of rounds or a token target', path: ['rounds'] })
  .refine((s) => s.codecs === undefined || s.codecs.length === 0 || s.codecs.includes(s.codec), { message: 'list the run\'s codec among the codecs its nodes may use', path: ['codecs'] })
  .refine((s) => s.codecs === undefined || new Set(s.codecs).size === s.codecs.length, { message: 'name each codec once', path: ['codecs'] })
  // Each node adds its own error-feedback residual to a topk report, so two honest twins differ.
  .refine((s) => !allowedCodecs(s).includes('topk') || s.defences.redundancy === 0, { message: 'redundancy cannot check topk reports (each node adds its own error feedback); use int8 or turn redundancy off', path: ['defences', 'redundancy'] })


export type Recipe = z.infer<typeof recipeSchema>

/** The codecs a run's nodes may report in: its `codecs`, or its one `codec`. */
export function allowedCodecs (spec: { codec: CodecName, codecs?: readonly CodecName[] | undefined }): CodecName[] {
  return spec.codecs !== undefined && spec.codecs.length > 0 ? [...spec.codecs] : [spec.codec]
}
export type Retention = z.infer<typeof retentionSchema>
export type Defences = z.infer<typeof defencesSchema>
export type RunSpecInput = z.input<typeof runSpecSchema>
export type RunSpec = z.infer<typeof runSpecSchema>

/** Every problem with a spec, one line per field, for CLIs and forms. */
export function describeSpecErrors (error: z.ZodError): Array<{ field: string, message: string }> {
  return error.issues.map((i) => ({ field: i.path.join('.') || '(spec)', message: i.message }))
}

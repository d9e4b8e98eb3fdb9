import { CODEC_NAMES } from './codecs/index.ts'
import { z } from 'zod'
import { executorKindSchema, reportMetadataSchema } from './signed-report.ts'
import { llamaConfigSchema } from './llama-config.ts'
import { MAX_UNIT_INNER_STEPS, OVERLAP_MODES, shardUrlSchema } from './run-spec.ts'
import { plainTextSchema } from './plain-text.ts'

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256')

/** A contiguous slice of one shard's tokens a node trains on; `url` when the shard comes from a URL manifest rather than the coordinator. */
export const tokenRangeSchema = z.object({
  shard: sha256Hex,
  start: z.number().int().nonnegative(),
  end: z.number().int().positive(),
  url: shardUrlSchema.optional()
}).refine((r) => r.end > r.start, 'end must be after start')

/** The inner-loop recipe a work unit carries. */
export const innerRecipeSchema = z.object({
  innerSteps: z.number().int().positive().max(MAX_UNIT_INNER_STEPS),
  batchSize: z.number().int().positive().max(4096),
  seqLen: z.number().int().positive().max(65_536),
  lr: z.number().positive().max(1),
  warmupSteps: z.number().int().nonnegative(),
  weightDecay: z.number().nonnegative().max(1),
  // AdamW (torch's and ours) needs each beta in [0, 1): at 1 a moment never moves off its start.
  beta1: z.number().min(0).lt(1, 'must be below 1'),
  beta2: z.number().min(0).lt(1, 'must be below 1'),
  gradClip: z.number().positive(),
  seed: z.number().int().nonnegative(),
  /**
   * Start this unit's inner optimizer afresh and keep nothing for the next round. Runs that double
   * units for redundancy checks set it on every unit, so any two nodes given one unit compute
   * the same delta and no node can tell which of its units is a check.
   */
  freshInnerState: z.boolean().optional()
})

/**
 * A unit the node's executor cannot train (too large for its memory, too slow for the deadline), with why.
 * Both go into the ledger's public reason: plain text (plain-text.ts); the message may span lines.
 */
export const unitDeclineSchema = z.object({
  assignmentId: z.string().uuid(),
  code: plainTextSchema({ min: 1, max: 64 }),
  message: plainTextSchema({ max: 2000, lines: 'multi-line' })
}).strict()

export type UnitDecline = z.infer<typeof unitDeclineSchema>

/**
 * What an agent asks on `/barnraise/work/1.0.0`. `decline` hands its current unit back: the
 * coordinator records the reason in the ledger, where the organizer sees it, and gives the
 * unit's tokens to other nodes.
 */
export const workRequestSchema = z.object({
  type: z.literal('work'),
  decline: unitDeclineSchema.optional(),
  scored: z.lazy(() => scoreResultSchema).optional(),
  /**
   * A look ahead: "I am still training (or reporting) this unit; which unit comes after it?" The
   * answer is the node's oldest unit handed out later than this one (so its base and shards can
   * be fetched meanwhile) or `wait`; nothing is declined, scored or handed out by asking.
   */
  after: z.string().uuid().optional(),
  /**
   * The executor this node trains and scores with. The coordinator hands scoring tasks too large
   * for the TypeScript forward pass only to nodes that name a torch executor (rounds/node-scoring.ts).
   * A claim: a node that names one it lacks refuses those tasks, nothing more. Older agents omit it.
   */
  executor: executorKindSchema.optional()
}).strict()

/**
 * A scoring task: the held-out loss of the round's base weights, of base − Δ and of base + Δ
 * for another node's report Δ, on the windows in shard `windows` (batchSize × (seqLen + 1)
 * token ids, row after row; a blob, since real windows outgrow a 64 KiB control message).
 * Handed to two nodes that did not produce the report when the model is too large for the
 * coordinator to score it.
 */
export const scoringTaskSchema = z.object({
  taskId: z.string().uuid(),
  runId: z.string().uuid(),
  runName: z.string(),
  round: z.number().int().nonnegative(),
  baseCheckpoint: sha256Hex,
  modelConfig: llamaConfigSchema,
  /** sha256 of the report's payload, fetched on the blob protocol */
  report: sha256Hex,
  codec: z.enum(CODEC_NAMES),
  /** sha256 of a shard holding the scoring windows' token ids */
  windows: sha256Hex,
  batchSize: z.number().int().positive().max(64),
  seqLen: z.number().int().positive().max(65_536),
  deadline: z.string()
})

/** The optional work-request fields a coordinator of this version reads, listed in its enrollment answer (`workFields`). */
export const WORK_REQUEST_EXTENSIONS: readonly string[] = ['executor']

/**
 * Two honest scorers' losses agree to this share of the base loss: the same float32 arithmetic on
 * the same bytes, the TypeScript forward pass or the torch executor's, summation order aside (the
 * agent's tests hold the two executors to a tenth of it). The coordinator voids scores that differ by more.
 */
export const SCORER_AGREEMENT = 1e-3

/** A scoring task's answer; a loss that is not finite (the model diverged) is null. */
export const scoreResultSchema = z.object({
  taskId: z.string().uuid(),
  base: z.number().finite().nullable(),
  after: z.number().finite().nullable(),
  reversed: z.number().finite().nullable()
}).strict()

/**
 * How a node that holds the checkpoint `from` rebuilds the unit's base itself instead of
 * downloading the model, then takes the Nesterov outer step from `from` with the momentum that
 * went with it. The round's update comes one of two ways, whichever is fewer bytes: `reports`,
 * the round's accepted reports to fold in this order with these token weights into their
 * token-weighted mean; or `aggregate`, that mean as the coordinator encoded it (the run's dense
 * codec, int8 for topk runs; topk in runs with a sparse broadcast) and applied
 * it. The result must hash to the unit's baseCheckpoint; otherwise the node downloads the model.
 */
/** Codecs a round's mean update can be broadcast in: dense ones, and topk where the run's broadcast is sparse. */
export const AGGREGATE_CODECS = ['int8', 'fp16', 'fp32', 'topk'] as const
export type AggregateCodec = typeof AGGREGATE_CODECS[number]

// Parsed only by agents, from their coordinator: fields a newer coordinator adds are dropped,
// not refused, so an older agent keeps training. A base rebuilt from an update it only half
// understands fails its sha256 check and is downloaded instead: never a wrong base.
export const roundUpdateSchema = z.object({
  /** the checkpoint the round's outer step started from */
  from: sha256Hex,
  reports: z.array(z.object({
    /** the payload's sha256, fetched on the blob protocol */
    sha256: sha256Hex,
    tokens: z.number().int().positive(),
    bytes: z.number().int().positive()
  })).min(1).max(10_000).optional(),
  /** the listed reports' codec, when it is not the unit's own (a run that lets slow links use a smaller codec) */
  codec: z.enum(CODEC_NAMES).optional(),
  /** the round's mean update, encoded once by the coordinator (fetched on the blob protocol) */
  aggregate: z.object({ sha256: sha256Hex, bytes: z.number().int().positive(), codec: z.enum(AGGREGATE_CODECS) }).optional(),
  outerLr: z.number().positive(),
  outerMomentum: z.number().min(0).max(0.999)
})
  .refine((u) => (u.reports === undefined) !== (u.aggregate === undefined), 'an update carries either its reports or its aggregate')
  .refine((u) => u.codec === undefined || u.reports !== undefined, 'only listed reports have a codec of their own')

export const workUnitSchema = z.object({
  assignmentId: z.string().uuid(),
  runId: z.string().uuid(),
  runName: z.string(),
  round: z.number().int().nonnegative(),
  baseCheckpoint: sha256Hex,
  /** Llama config.json of the run's model */
  modelConfig: llamaConfigSchema,
  ranges: z.array(tokenRangeSchema).min(1).max(1024),
  shardVocabSize: z.number().int().positive(),
  recipe: innerRecipeSchema,
  codec: z.enum(CODEC_NAMES),
  deadline: z.string(),
  /** total optimizer steps this node has been given in this run before; drives the LR schedule */
  scheduleOffset: z.number().int().nonnegative(),
  totalInnerSteps: z.number().int().positive(),
  /**
   * Present when the run broadcasts its updates (a mean without clipping) and this is not its
   * first round. One this agent cannot read (an aggregate codec added after it was built) is
   * dropped, not the unit: the node downloads the base instead of rebuilding it.
   */
  update: roundUpdateSchema.optional().catch(undefined),
  /**
   * When the run broadcasts updates: the outer momentum that goes with baseCheckpoint (a blob a
   * node fetches once, to follow the next rounds' updates), or null before the first outer step.
   */
  momentum: sha256Hex.nullable().optional(),
  /**
   * Present when baseCheckpoint is the run's untrained model, initialised from this seed: a node
   * may make it itself (the trainer's initParams, stored as F32 safetensors) instead of
   * downloading it, and uses what it made only if it hashes to baseCheckpoint.
   */
  initialSeed: z.number().int().nonnegative().optional(),
  /**
   * `delayed` when the run overlaps its rounds: this unit may start from the base one outer
   * step old (the round before is still collecting), and its delta is applied to the newer one.
   */
  overlap: z.enum(OVERLAP_MODES).optional(),
  /**
   * The share of this node's error-feedback residual to add to this unit's delta (the run's
   * recipe.errorFeedbackDecay); absent: all of it.
   */
  errorFeedbackDecay: z.number().min(0).max(1).optional()
})

export const workResponseSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('unit'), unit: workUnitSchema }),
  z.object({ kind: z.literal('score'), task: scoringTaskSchema }),
  z.object({ kind: z.literal('wait'), retryAfterMs: z.number().int().positive(), reason: z.string() }),
  z.object({ kind: z.literal('refused'), code: z.string(), message: z.string() })
])

export type TokenRange = z.infer<typeof tokenRangeSchema>
export type RoundUpdate = z.infer<typeof roundUpdateSchema>
export type InnerRecipe = z.infer<typeof innerRecipeSchema>
export type WorkUnit = z.infer<typeof workUnitSchema>
export type WorkResponse = z.infer<typeof workResponseSchema>
export type ScoringTask = z.infer<typeof scoringTaskSchema>
export type ScoreResult = z.infer<typeof scoreResultSchema>

/** Asks for a blob on `/barnraise/blob/1.0.0`, optionally resuming from an offset. */
export const blobRequestSchema = z.object({
  type: z.literal('blob'),
  sha256: sha256Hex,
  offset: z.number().int().nonnegative().default(0),
  /** Bytes wanted from `offset` (a block a node's peers could not give it); the rest of the blob when absent. */
  length: z.number().int().positive().optional()
}).strict()

/** The coordinator's answer before the raw bytes follow, in frames of at most BLOB_CHUNK_BYTES. */
export const blobResponseSchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), size: z.number().int().nonnegative(), offset: z.number().int().nonnegative() }),
  z.object({ ok: z.literal(false), code: z.string(), message: z.string() })
])

export type BlobRequest = z.infer<typeof blobRequestSchema>

/** Frames that carry blob and report bytes. */
export const BLOB_CHUNK_BYTES = 256 * 1024

// Wire timeouts, shared by both ends so neither gives up before the other expects it to.
/** A request frame and its small JSON reply (enroll, heartbeat, work, a blob or report header). */
export const REQUEST_TIMEOUT_MS = 10_000
/** One BLOB_CHUNK_BYTES frame of a blob or report payload, either way. */
export const CHUNK_TIMEOUT_MS = 60_000
/** Opening a stream that moves bytes (a blob download, a report upload). */
export const TRANSFER_DIAL_TIMEOUT_MS = 30_000
/** The blob service's header before a download's bytes (it may read the blob from disk first). */
export const BLOB_HEADER_TIMEOUT_MS = 30_000
/** The coordinator's admission of a report header (it checks the signature and assignment first). */
export const REPORT_ADMISSION_TIMEOUT_MS = 60_000
/** The coordinator's verdict after a report's payload (it decodes and folds it first). */
export const REPORT_VERDICT_TIMEOUT_MS = 120_000

/**
 * The first frame of `/barnraise/report/1.0.0`. The coordinator answers with an admission;
 * only then does the encoded pseudo-gradient follow in chunks, then the final verdict.
 */
export const reportHeaderSchema = z.object({
  type: z.literal('report'),
  metadata: reportMetadataSchema,
  /** base64 Ed25519 signature over canonicalReportMetadata(metadata) with the node's libp2p key */
  signature: z.string().min(1).max(200)
}).strict()

/**
 * The coordinator's answer to the header: send the payload, or do not bother (the header
 * alone condemns the report). Nothing large crosses the wire for a refused report.
 */
export const reportAdmissionSchema = z.discriminatedUnion('proceed', [
  z.object({ proceed: z.literal(true) }),
  z.object({ proceed: z.literal(false), code: z.string(), message: z.string() })
])

export const reportResponseSchema = z.discriminatedUnion('ok', [
  // `held`: it passed every check and waits for a second node's copy of the unit to compare (redundancy).
  z.object({ ok: z.literal(true), outcome: z.enum(['accepted', 'held']), duplicate: z.boolean() }),
  z.object({ ok: z.literal(false), outcome: z.literal('refused'), code: z.string(), message: z.string() })
])

export type ReportHeader = z.infer<typeof reportHeaderSchema>
export type ReportResponse = z.infer<typeof reportResponseSchema>

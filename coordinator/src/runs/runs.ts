import { sql } from 'kysely'
import type { Kysely, Transaction } from 'kysely'
import { describeSpecErrors, runSpecSchema } from '@barnraise/protocol'
import type { LlamaConfig, RunSpec } from '@barnraise/protocol'
import type { Database, RunStatus } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import { nextStatus } from './run-states.ts'
import { pendingDataset, resolveDataset, resolveModel, storeInitialCheckpoint } from './run-resolution.ts'
import type { ResolvedDataset, RunStore } from './run-resolution.ts'
import type { RunAction } from './run-states.ts'
import { DEFAULT_INSTALL_LIMITS, overInstallLimits } from './install-limits.ts'
import { keepsReports } from './run-plan.ts'
import type { InstallLimits } from './install-limits.ts'

/** One stored token shard and how many tokens it holds. */
/** A train or validation shard of a run; `url` where agents fetch it from a manifest's URL rather than the coordinator. */
export interface ShardInfo { sha256: string, tokens: number, url?: string }

/** A run spec with everything resolved: the full model config and the dataset's shards. */
export interface ResolvedRunSpec extends Omit<RunSpec, 'dataset' | 'model'> {
  model: RunSpec['model']
  modelConfig: LlamaConfig
  paramCount: number
  dataset: RunSpec['dataset']
  trainShards: ShardInfo[]
  validationShard: ShardInfo
  vocabSize: number
  /** what made the dataset's tokens: `byte`, a catalogue name or sha256:<hex> of an uploaded tokenizer.json */
  tokenizer: string
  /** sha256 of the dataset's document index blob (uploaded datasets); null when there is none */
  documentIndex: string | null
}

/**
 * A resolved spec as a `runs.spec` row holds it: rows written before `license`, `retention` and
 * `defences` (or `overlap`) existed lack them (readers fall back to the defaults).
 */
export type StoredRunSpec = Omit<ResolvedRunSpec, 'license' | 'retention' | 'defences' | 'tokenizer' | 'documentIndex' | 'overlap' | 'unitSizing' | 'broadcast'> & Partial<Pick<ResolvedRunSpec, 'license' | 'retention' | 'defences' | 'tokenizer' | 'documentIndex' | 'overlap' | 'unitSizing' | 'broadcast'>>

/** Thrown with one message per bad field, so a form or CLI can show each. */
export class RunSpecError extends CoordinatorError {
  readonly fields: Array<{ field: string, message: string }>
  constructor (fields: Array<{ field: string, message: string }>) {
    super('ERR_INVALID_INPUT', `invalid run spec: ${fields.map((f) => `${f.field}: ${f.message}`).join('; ')}`)
    this.fields = fields
  }
}

/** Validates a spec; throws RunSpecError listing every bad field. */
export function parseRunSpec (input: unknown): RunSpec {
  const parsed = runSpecSchema.safeParse(input)
  if (!parsed.success) throw new RunSpecError(describeSpecErrors(parsed.error))
  return parsed.data
}

/** Statuses of a run that is not finished: it holds its owner's room and (when running) nodes. */
const OPEN_STATUSES: RunStatus[] = ['draft', 'running', 'paused']

/**
 * Refuses a new run to an organizer who already owns `max` unfinished ones. Counted before the
 * run is resolved (a cheap early refusal) and again, under the owner's lock, where it is inserted.
 */
async function assertOpenRunRoom (db: Kysely<Database>, owner: string, max: number): Promise<void> {
  const { n } = await db.selectFrom('runs').select((eb) => eb.fn.countAll<string>().as('n'))
    .where('created_by', '=', owner).where('status', 'in', OPEN_STATUSES).executeTakeFirstOrThrow()
  if (Number(n) >= max) {
    throw new CoordinatorError('ERR_QUOTA_EXCEEDED', `you have ${Number(n)} unfinished runs (draft, running or paused); this coordinator allows ${max} per organizer (--max-open-runs). Stop one before creating another`)
  }
}

/**
 * Creates a run in `draft` with its initial checkpoint; resolution errors name the field. A run
 * on an uploaded dataset still uploading or tokenizing is made now and waits for its shards
 * (`awaiting_dataset`; runs/awaiting-data.ts fills them in, or fails the run, when it settles).
 */
export async function createRun (store: RunStore, input: unknown, createdBy: string | null = null, limits: InstallLimits = DEFAULT_INSTALL_LIMITS, options: { anyDataset?: boolean } = {}): Promise<{ id: string, spec: ResolvedRunSpec }> {
  const spec = parseRunSpec(input)
  if (createdBy !== null) await assertOpenRunRoom(store.db, createdBy, limits.maxOpenRuns)
  let dataset: ResolvedDataset
  let awaiting: string | null = null
  try {
    // A person may train on the datasets they uploaded (an admin, or the operator, on any).
    const user = createdBy === null ? undefined : { id: createdBy, admin: options.anyDataset === true }
    const pending = await pendingDataset(store, spec.dataset, user)
    if (pending !== null && spec.dataset.source === 'dataset') awaiting = spec.dataset.id
    const owner = createdBy === null ? undefined : { uploadedBy: createdBy, quota: limits }
    dataset = pending ?? await resolveDataset(store, spec.dataset, { allowPrivateShardUrls: limits.allowPrivateShardUrls === true, owner, user })
  } catch (err) {
    throw new RunSpecError([{ field: 'dataset', message: (err as Error).message }])
  }
  let model
  try {
    // A preset's vocabulary follows the dataset's tokenizer (byte-level data keeps the preset's 256).
    model = resolveModel(spec.model, dataset.tokenizer === 'byte' ? undefined : dataset.vocabSize)
  } catch (err) {
    throw new RunSpecError([{ field: 'model', message: (err as Error).message }])
  }
  // Before anything the size of the model is allocated.
  const keptReportBytes = keepsReports(spec.defences) ? model.paramCount * spec.maxNodes * 4 : 0
  const over = overInstallLimits({ paramCount: model.paramCount, seqLen: spec.recipe.seqLen, batchSize: spec.recipe.batchSize, evalBatches: spec.evalBatches, keptReportBytes }, limits)
  if (over.length > 0) throw new RunSpecError(over)
  if (dataset.vocabSize > model.config.vocab_size) {
    throw new RunSpecError([{ field: 'model', message: `the dataset uses ${dataset.vocabSize} token ids but the model's vocab_size is ${model.config.vocab_size}` }])
  }
  // A dataset still tokenizing has no shards to measure yet: checked when they come.
  const short = awaiting === null ? shardsTooShort(spec, dataset) : null
  if (short !== null) throw new RunSpecError([short])
  const resolved: ResolvedRunSpec = {
    ...spec,
    // A config.json as parsed: the keys it does not use are dropped, not stored (an unknown key
    // nested thousands deep made writing the spec overflow the stack) and shown to every viewer.
    model: 'preset' in spec.model ? { preset: spec.model.preset } : { config: { ...model.config } },
    modelConfig: model.config,
    paramCount: model.paramCount,
    trainShards: dataset.train,
    validationShard: dataset.validation,
    vocabSize: model.config.vocab_size,
    tokenizer: dataset.tokenizer,
    documentIndex: dataset.documentIndex
  }
  const checkpoint = await storeInitialCheckpoint(store, model.config, spec.seed)
  const row = await store.db.transaction().execute(async (trx) => {
    if (createdBy !== null) {
      // Counted again under a lock on the owner, in the transaction that inserts: creations at
      // once each counted the same runs before any was inserted, and all got through.
      await lockOwner(trx, 'runs.create', createdBy)
      await assertOpenRunRoom(trx, createdBy, limits.maxOpenRuns)
    }
    const run = await trx.insertInto('runs').values({
      name: spec.name,
      spec: JSON.stringify(resolved),
      created_by: createdBy,
      updated_at: new Date(),
      latest_checkpoint: checkpoint,
      awaiting_dataset: awaiting
    }).returning('id').executeTakeFirstOrThrow()
    await trx.insertInto('checkpoints').values({ sha256: checkpoint, run_id: run.id, round: 0, tokens_seen: 0, val_loss: null })
      .execute()
    return run
  })
  return { id: row.id, spec: resolved }
}

/**
 * Serializes what one person does under `scope` until the transaction ends (a transaction-level
 * advisory lock on the pair), so a quota counted inside it holds against requests at once.
 * PGlite has one connection and runs transactions one at a time; the lock is taken there too.
 */
export async function lockOwner (trx: Transaction<Database>, scope: string, owner: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${scope}), hashtext(${owner}))`.execute(trx)
}

/** The field error when no train shard, or the validation shard, is shorter than one training window; null when they fit. */
export function shardsTooShort (spec: Pick<RunSpec, 'recipe'>, dataset: Pick<ResolvedDataset, 'train' | 'validation'>): { field: string, message: string } | null {
  const window = spec.recipe.seqLen + 1
  if (dataset.train.some((s) => s.tokens >= window) && dataset.validation.tokens >= window) return null
  return { field: 'recipe.seqLen', message: `the dataset's shards are shorter than one training window (${window} tokens)` }
}

/** Applies start / pause / resume / stop, refusing transitions that make no sense. */
export async function changeRunStatus (db: Kysely<Database>, runId: string, action: RunAction): Promise<RunStatus> {
  return await db.transaction().execute(async (trx) => {
    const run = await trx.selectFrom('runs').select(['status', 'awaiting_dataset']).where('id', '=', runId).forUpdate().executeTakeFirst()
    if (run === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no run ${runId}`)
    // Its dataset is still tokenizing: it starts the moment its shards are in (runs/awaiting-data.ts).
    if (action === 'start' && run.status === 'draft' && run.awaiting_dataset !== null) {
      await trx.updateTable('runs').set({ start_when_ready: true, updated_at: new Date() }).where('id', '=', runId).execute()
      return 'draft'
    }
    const to = nextStatus(run.status, action)
    if (to === undefined) throw new CoordinatorError('ERR_CONFLICT', `cannot ${action} a run that is ${run.status}`)
    await trx.updateTable('runs').set({ status: to, updated_at: new Date() }).where('id', '=', runId).execute()
    if (to === 'completed') {
      await trx.updateTable('rounds').set({ status: 'abandoned', closed_at: new Date(), close_reason: 'run stopped' })
        .where('run_id', '=', runId).where('status', '=', 'open').execute()
    }
    return to
  })
}

/**
 * Marks a run failed with a reason an organizer can act on. Failed is final, so its open rounds
 * end with it: a report or score still on its way is refused as stale instead of being credited
 * to a round that will never close.
 */
export async function failRun (db: Kysely<Database>, runId: string, reason: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('runs').set({ status: 'failed', failure_reason: reason.slice(0, 2000), updated_at: new Date() })
      .where('id', '=', runId).execute()
    await trx.updateTable('rounds').set({ status: 'abandoned', closed_at: new Date(), close_reason: 'the run failed' })
      .where('run_id', '=', runId).where('status', '=', 'open').execute()
  })
}

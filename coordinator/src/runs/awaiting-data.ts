// Runs launched on an uploaded dataset before it was tokenized: when the dataset is ready their
// shards go into the spec (and a run the organizer started starts); when it fails, so do they.
import type { ChangeFeed } from '../events/change-feed.ts'
import type { Logger } from '../log.ts'
import { resolveDataset } from './run-resolution.ts'
import type { RunStore } from './run-resolution.ts'
import { failRun, shardsTooShort } from './runs.ts'

/**
 * Settles every run waiting on `datasetId` (every waiting run when omitted, as at start-up,
 * in case the coordinator stopped between a dataset settling and its runs): nothing happens to
 * a run whose dataset is still on its way.
 */
export async function settleAwaitingRuns (deps: RunStore & { log: Logger, changes?: ChangeFeed }, datasetId?: string): Promise<void> {
  const { db, log } = deps
  const runs = await db.selectFrom('runs').innerJoin('datasets', 'datasets.id', 'runs.awaiting_dataset')
    .select(['runs.id', 'runs.status', 'runs.spec', 'runs.start_when_ready', 'datasets.status as dataset_status', 'datasets.name as dataset_name', 'datasets.error as dataset_error'])
    .where('runs.awaiting_dataset', 'is not', null)
    .$if(datasetId !== undefined, (q) => q.where('runs.awaiting_dataset', '=', datasetId!))
    .execute()
  for (const run of runs) {
    if (run.dataset_status === 'uploading' || run.dataset_status === 'tokenizing') continue
    // A run stopped while it waited has nothing to start; it only stops waiting.
    if (run.status !== 'draft') {
      await db.updateTable('runs').set({ awaiting_dataset: null }).where('id', '=', run.id).execute()
      continue
    }
    if (run.dataset_status === 'failed') {
      await db.updateTable('runs').set({ awaiting_dataset: null }).where('id', '=', run.id).execute()
      await failRun(db, run.id, `its dataset "${run.dataset_name}" could not be tokenized: ${run.dataset_error ?? 'no reason was recorded'}`)
      log.warn('run failed with its dataset', { runId: run.id, dataset: datasetId })
      deps.changes?.publish('runs', run.id)
      continue
    }
    try {
      const dataset = await resolveDataset(deps, run.spec.dataset)
      const short = shardsTooShort(run.spec, dataset)
      if (short !== null) throw new Error(short.message)
      if (dataset.vocabSize > run.spec.vocabSize) throw new Error(`the dataset uses ${dataset.vocabSize} token ids but the model's vocab_size is ${run.spec.vocabSize}`)
      const spec = { ...run.spec, trainShards: dataset.train, validationShard: dataset.validation, documentIndex: dataset.documentIndex }
      await db.updateTable('runs').set({
        spec: JSON.stringify(spec), awaiting_dataset: null, updated_at: new Date(), ...(run.start_when_ready ? { status: 'running' as const } : {})
      }).where('id', '=', run.id).where('status', '=', 'draft').execute()
      log.info('run has its dataset', { runId: run.id, shards: dataset.train.length, started: run.start_when_ready })
    } catch (err) {
      await db.updateTable('runs').set({ awaiting_dataset: null }).where('id', '=', run.id).execute()
      await failRun(db, run.id, `its dataset "${run.dataset_name}" is tokenized, but the run cannot use it: ${(err as Error).message}`)
      log.warn('run cannot use its dataset', { runId: run.id, err })
    }
    deps.changes?.publish('runs', run.id)
  }
}

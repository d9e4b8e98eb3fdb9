import { CoordinatorError } from '../errors.ts'
import { retentionOf } from '../runs/checkpoint-retention.ts'
import { CHECKPOINT_PAGE_MAX, FOLDER_TAR, checkpointSummary, runCheckpointFolders } from './checkpoint-folder.ts'
import type { CheckpointFolderDeps } from './checkpoint-folder.ts'
import { UNSET_LICENSE } from './model-card.ts'

/** Where the documents a checkpoint trained on are listed (downloads.ts), or null when the run's dataset keeps no document index. */
export function checkpointDocumentLinks (runId: string, round: number, hasIndex: boolean): { csv: string, json: string } | null {
  if (!hasIndex) return null
  return { csv: `/api/runs/${runId}/documents.csv?round=${round}`, json: `/api/runs/${runId}/documents.json?round=${round}` }
}

/** How many checkpoints the run page asks for unless told: what its table shows before "show all". */
export const RUN_PAGE_CHECKPOINTS = 50

/**
 * What the run page's checkpoint section shows: the newest `limit` checkpoints (at most
 * CHECKPOINT_PAGE_MAX), newest first, how many the run has and has pruned, and its setting and licence.
 */
export async function listRunCheckpoints (deps: CheckpointFolderDeps, runId: string, limit = RUN_PAGE_CHECKPOINTS) {
  const page = await runCheckpointFolders(deps, runId, { order: 'newest', limit })
  if (page === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no run ${runId}`)
  const folders = page.folders
  const counts = await deps.db.selectFrom('checkpoints')
    .select((eb) => [eb.fn.countAll<string>().as('total'), eb.fn.count<string>('pruned_at').as('pruned')])
    .where('run_id', '=', runId).executeTakeFirstOrThrow()
  const run = await deps.db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirstOrThrow()
  const spec = run.spec
  const hasIndex = spec.documentIndex !== undefined && spec.documentIndex !== null
  return {
    runId,
    keepEvery: retentionOf(run.spec).keepEvery,
    license: spec.license ?? UNSET_LICENSE,
    latestUrl: `/api/runs/${runId}/checkpoints/latest/`,
    /** the newest checkpoint's folder as one archive, at an address that follows the run */
    latestTarUrl: `/api/runs/${runId}/checkpoints/latest/${FOLDER_TAR}`,
    /** the run's checkpoints, listed or not */
    total: Number(counts.total),
    /** of those, how many retention pruned */
    pruned: Number(counts.pruned),
    /** the most one listing returns */
    pageMax: CHECKPOINT_PAGE_MAX,
    /** where every checkpoint is listed, oldest first, a page at a time */
    allUrl: `/api/runs/${runId}/checkpoints`,
    checkpoints: folders.map((f) => ({ ...checkpointSummary(f), documents: checkpointDocumentLinks(runId, f.round, hasIndex) })).reverse()
  }
}

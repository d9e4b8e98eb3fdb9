import { CoordinatorError } from '../errors.ts'
import { retentionOf } from '../runs/checkpoint-retention.ts'
import { FOLDER_TAR, checkpointSummary, runCheckpointFolders } from './checkpoint-folder.ts'
import type { CheckpointFolderDeps } from './checkpoint-folder.ts'
import { UNSET_LICENSE } from './model-card.ts'

/** Where the documents a checkpoint trained on are listed (downloads.ts), or null when the run's dataset keeps no document index. */
export function checkpointDocumentLinks (runId: string, round: number, hasIndex: boolean): { csv: string, json: string } | null {
  if (!hasIndex) return null
  return { csv: `/api/runs/${runId}/documents.csv?round=${round}`, json: `/api/runs/${runId}/documents.json?round=${round}` }
}

/** What the run page's checkpoint section shows: every checkpoint, newest first, and the run's setting and licence. */
export async function listRunCheckpoints (deps: CheckpointFolderDeps, runId: string) {
  const folders = await runCheckpointFolders(deps, runId)
  if (folders === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no run ${runId}`)
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
    checkpoints: folders.map((f) => ({ ...checkpointSummary(f), documents: checkpointDocumentLinks(runId, f.round, hasIndex) })).reverse()
  }
}

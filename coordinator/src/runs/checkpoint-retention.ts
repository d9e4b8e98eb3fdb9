// Checkpoint retention: a long run keeps round 0, every Nth round's checkpoint and the latest,
// and deletes the others' weights as it goes. Their rows stay, marked pruned, so the loss curve,
// the rounds and the ledger still tell the whole story.
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Retention } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { Logger } from '../log.ts'
import type { StoredRunSpec } from './runs.ts'

/**
 * A run's retention setting. Runs created before the setting existed keep every checkpoint:
 * nobody chose to delete their weights.
 */
export function retentionOf (spec: StoredRunSpec): Retention {
  return spec.retention ?? { keepEvery: 1 }
}

/** Whether the setting alone keeps a round's checkpoint (round 0 and every Nth); the latest is kept regardless. */
export function keptByRetention (round: number, keepEvery: number): boolean {
  return round % keepEvery === 0
}

/**
 * Blobs the round loop may still read, for every run: each run's latest checkpoint (the next
 * round's base, and what a restart resumes from), its outer momentum and sparse broadcast
 * residual, and the base of any open
 * round. The store is content-addressed, so another run can point at the same bytes.
 */
async function blobsInUse (db: Kysely<Database>): Promise<Set<string>> {
  const runs = await db.selectFrom('runs').select(['latest_checkpoint', 'outer_state', 'broadcast_residual']).execute()
  const open = await db.selectFrom('rounds').select('base_checkpoint').where('status', '=', 'open').execute()
  const inUse = new Set<string>()
  for (const r of runs) {
    if (r.latest_checkpoint !== null) inUse.add(r.latest_checkpoint)
    if (r.outer_state !== null) inUse.add(r.outer_state)
    if (r.broadcast_residual !== null) inUse.add(r.broadcast_residual)
  }
  for (const r of open) inUse.add(r.base_checkpoint)
  return inUse
}

/**
 * Whether a checkpoint row that is not pruned (of any run) still points at these weights: runs
 * with the same model and seed share their round-0 blob, and one run's setting must not delete
 * what another run keeps.
 */
async function keptByAnotherRow (db: Kysely<Database>, sha256: string): Promise<boolean> {
  const row = await db.selectFrom('checkpoints').select('run_id').where('sha256', '=', sha256).where('pruned_at', 'is', null).limit(1).executeTakeFirst()
  return row !== undefined
}

/** What one sweep deleted. */
export interface RetentionResult { prunedRounds: number[], optimizerStates: number }

/**
 * Prunes what a run no longer keeps: checkpoints outside its retention setting (row marked
 * pruned, blob deleted) and outer-momentum states a newer one replaced. Idempotent, and run
 * under the run's lock after each round closes, so nothing it deletes is about to be read; a
 * sweep cut short by a crash is finished by the next one.
 */
export async function applyCheckpointRetention (deps: { db: Kysely<Database>, blobs: BlobStore, log: Logger }, runId: string): Promise<RetentionResult> {
  const { db, blobs } = deps
  const run = await db.selectFrom('runs').select(['spec', 'latest_checkpoint', 'outer_state']).where('id', '=', runId).executeTakeFirst()
  if (run === undefined) return { prunedRounds: [], optimizerStates: 0 }
  const { keepEvery } = retentionOf(run.spec)
  const inUse = await blobsInUse(db)

  const rows = await db.selectFrom('checkpoints').leftJoin('blobs', 'blobs.sha256', 'checkpoints.sha256')
    .select(['checkpoints.sha256', 'checkpoints.round', 'checkpoints.pruned_at', 'blobs.sha256 as recorded'])
    .where('checkpoints.run_id', '=', runId).execute()
  // Marked pruned but still recorded in `blobs`: a previous sweep stopped before deleting it.
  const unfinished = rows.filter((r) => r.pruned_at !== null && r.recorded !== null)
  const due = rows.filter((r) => r.pruned_at === null && !keptByRetention(r.round, keepEvery) && !inUse.has(r.sha256))
  for (const r of due) {
    // Mark first, then delete: a crash in between leaves a pruned row whose blob the next sweep
    // deletes, never a downloadable row without its weights.
    await db.updateTable('checkpoints').set({ pruned_at: new Date() }).where('run_id', '=', runId).where('round', '=', r.round).where('pruned_at', 'is', null).execute()
  }
  for (const r of [...unfinished, ...due]) {
    if (inUse.has(r.sha256) || await keptByAnotherRow(db, r.sha256)) continue
    await blobs.delete(r.sha256)
    await db.deleteFrom('blobs').where('sha256', '=', r.sha256).where('kind', '=', 'checkpoint').execute()
  }

  // Only the current momentum is ever read; each round wrote a model-sized one. A close that
  // crashed before its commit can also leave a checkpoint blob no row points to.
  const stale = await db.selectFrom('blobs').select(['sha256', 'kind'])
    .where(sql<string>`meta->>'runId'`, '=', runId)
    .where((eb) => eb.or([
      eb('kind', '=', 'optimizer'),
      eb.and([eb('kind', '=', 'checkpoint'), eb.not(eb.exists(eb.selectFrom('checkpoints').select('checkpoints.sha256').whereRef('checkpoints.sha256', '=', 'blobs.sha256')))])
    ]))
    .execute()
  let optimizerStates = 0
  for (const s of stale) {
    if (inUse.has(s.sha256)) continue
    // File first: a row left behind by a crash here is found and finished next time.
    await blobs.delete(s.sha256)
    await db.deleteFrom('blobs').where('sha256', '=', s.sha256).where('kind', '=', s.kind).execute()
    if (s.kind === 'optimizer') optimizerStates++
  }

  const prunedRounds = due.map((r) => r.round).sort((a, b) => a - b)
  if (prunedRounds.length > 0) deps.log.info('checkpoints pruned', { runId, rounds: prunedRounds, keepEvery })
  return { prunedRounds, optimizerStates }
}

/** The sweep for the round loop: a failed sweep is logged and retried after the next round, never fails the run. */
export async function pruneAfterRound (deps: { db: Kysely<Database>, blobs: BlobStore, log: Logger }, runId: string): Promise<void> {
  try {
    await applyCheckpointRetention(deps, runId)
  } catch (err) {
    deps.log.error('checkpoint retention failed; the next round retries it', { runId, err })
  }
}

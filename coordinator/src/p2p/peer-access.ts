import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { blobKind } from '../blobs/blob-records.ts'

/** True when a node with this peer id was revoked; such a peer is refused at the handshake. */
export async function isRevokedPeer (db: Kysely<Database>, peerId: string): Promise<boolean> {
  const row = await db.selectFrom('nodes').select('id').where('peer_id', '=', peerId)
    .where('revoked_at', 'is not', null).executeTakeFirst()
  return row !== undefined
}

/** True for an enrolled, unrevoked node (it may hold a relay slot and be relayed to). */
export async function isEnrolledPeer (db: Kysely<Database>, peerId: string): Promise<boolean> {
  const row = await db.selectFrom('nodes').select('id').where('peer_id', '=', peerId)
    .where('revoked_at', 'is', null).executeTakeFirst()
  return row !== undefined
}

/**
 * True when an enrolled, unrevoked node may fetch a blob: one of its own work units names it,
 * as the round's base checkpoint, as a shard of its token ranges, or as what rebuilds that base. Anything else (another
 * run's checkpoints, a dataset it was not given, any blob for a stranger) is refused.
 */
export async function mayFetchBlob (db: Kysely<Database>, peerId: string, sha256: string): Promise<boolean> {
  const row = await db.selectFrom('assignments')
    .innerJoin('nodes', 'nodes.id', 'assignments.node_id')
    .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
    .select('assignments.id')
    .where('nodes.peer_id', '=', peerId)
    .where('nodes.revoked_at', 'is', null)
    .where((eb) => eb.or([
      eb('rounds.base_checkpoint', '=', sha256),
      eb(sql<boolean>`assignments.ranges @> ${JSON.stringify([{ shard: sha256 }])}::jsonb`, '=', true)
    ]))
    .limit(1)
    .executeTakeFirst()
  return row !== undefined || await scoresWith(db, peerId, sha256) !== null || await rebuildsWith(db, peerId, sha256)
}

/**
 * Whether the peer holds a unit of an open round whose base it may rebuild (round-update.ts)
 * with blob `sha256`: a report accepted in the round that made that base, that round's aggregate
 * update, or the run's current momentum.
 */
export async function rebuildsWith (db: Kysely<Database>, peerId: string, sha256: string): Promise<boolean> {
  const row = await db.selectFrom('assignments as own')
    .innerJoin('nodes', 'nodes.id', 'own.node_id')
    .innerJoin('rounds as own_round', 'own_round.id', 'own.round_id')
    .innerJoin('runs', 'runs.id', 'own.run_id')
    .select('own.id')
    .where('nodes.peer_id', '=', peerId).where('nodes.revoked_at', 'is', null)
    // Only while the unit is still to be trained: that is when its base is rebuilt.
    .where('own_round.status', '=', 'open').where('own.status', '=', 'assigned')
    .where((eb) => eb.or([
      eb('runs.outer_state', '=', sha256),
      eb.exists(eb.selectFrom('rounds as prior_round').select('prior_round.id')
        .whereRef('prior_round.run_id', '=', 'own.run_id')
        .whereRef('prior_round.result_checkpoint', '=', 'own_round.base_checkpoint')
        .where('prior_round.update_blob', '=', sha256)),
      eb.exists(eb.selectFrom('assignments as prior')
        .innerJoin('rounds as prior_round', 'prior_round.id', 'prior.round_id')
        .select('prior.id')
        .whereRef('prior.run_id', '=', 'own.run_id')
        // The round whose checkpoint is the unit's base (round-update.ts).
        .whereRef('prior_round.result_checkpoint', '=', 'own_round.base_checkpoint')
        .where('prior_round.status', '=', 'closed').where('prior.status', '=', 'accepted')
        .where('prior.report_blob', '=', sha256))
    ]))
    .limit(1).executeTakeFirst()
  return row !== undefined
}

/**
 * Whether the peer holds an open scoring task that needs blob `sha256`: the round's base
 * checkpoint, the report it scores or the windows to score it on. Returns which, or null.
 */
export async function scoresWith (db: Kysely<Database>, peerId: string, sha256: string): Promise<'checkpoint' | 'report' | 'windows' | null> {
  const row = await db.selectFrom('scoring_tasks')
    .innerJoin('nodes', 'nodes.id', 'scoring_tasks.node_id')
    .innerJoin('rounds', 'rounds.id', 'scoring_tasks.round_id')
    .innerJoin('assignments', 'assignments.id', 'scoring_tasks.assignment_id')
    .select(['rounds.base_checkpoint', 'assignments.report_blob', 'scoring_tasks.windows_blob'])
    .where('nodes.peer_id', '=', peerId).where('nodes.revoked_at', 'is', null)
    .where('scoring_tasks.status', '=', 'assigned')
    .where((eb) => eb.or([eb('rounds.base_checkpoint', '=', sha256), eb('assignments.report_blob', '=', sha256), eb('scoring_tasks.windows_blob', '=', sha256)]))
    .limit(1).executeTakeFirst()
  if (row === undefined) return null
  return row.report_blob === sha256 ? 'report' : row.windows_blob === sha256 ? 'windows' : 'checkpoint'
}

/**
 * Whether the blob service may send this blob to the peer, once mayFetchBlob said it is one of
 * the peer's own: checkpoints and shards always; a report only to the nodes scoring it
 * (rounds/node-scoring.ts) or rebuilding the next base from it; the run's momentum and a
 * round's aggregate only to the latter (rounds/round-update.ts).
 */
export async function mayServeBlob (db: Kysely<Database>, peerId: string, sha256: string): Promise<boolean> {
  const kind = await blobKind(db, sha256)
  return kind === 'checkpoint' || kind === 'shard' ||
    (kind === 'report' && await scoresWith(db, peerId, sha256) === 'report') ||
    ((kind === 'report' || kind === 'optimizer' || kind === 'update') && await rebuildsWith(db, peerId, sha256))
}

import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'

/** True when a node with this peer id was revoked; such a peer is refused at the handshake. */
export async function isRevokedPeer (db: Kysely<Database>, peerId: string): Promise<boolean> {
  const row = await db.selectFrom('nodes').select('id').where('peer_id', '=', peerId)
    .where('revoked_at', 'is not', null).executeTakeFirst()
  return row !== undefined
}

/**
 * True when an enrolled, unrevoked node may fetch a blob: one of its own work units names it,
 * as the round's base checkpoint or as a shard of its token ranges. Anything else (another
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
  return row !== undefined
}

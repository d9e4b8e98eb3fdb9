// A node's report upload rate, as the coordinator measures it: what chooses a slow link's codec
// in runs that allow several (rounds/codec-choice.ts). Measured here, never taken from the node.
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { uploadSample } from '../rounds/codec-choice.ts'

/**
 * Folds one report upload (its payload bytes, and the seconds from our "proceed" to its last
 * byte) into the node's average: ½ on the newest. An upload too small to say anything is skipped.
 */
export async function recordUpload (db: Kysely<Database>, peerId: string, bytes: number, seconds: number): Promise<void> {
  const rate = uploadSample(bytes, seconds)
  if (rate === null) return
  await db.updateTable('nodes')
    .set({ upload_bytes_per_second: sql<number>`case when upload_bytes_per_second is null or upload_bytes_per_second <= 0 then ${rate}::float8 else (upload_bytes_per_second + ${rate}::float8) / 2 end` })
    .where('peer_id', '=', peerId).execute()
}

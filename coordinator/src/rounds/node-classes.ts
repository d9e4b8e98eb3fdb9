// Each node's device class as of its latest report, for pairing twins (redundancy.ts): the
// class is what the node's reports last said it trained with, on the hardware it enrolled with.
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { deviceClass } from './redundancy.ts'

/** Each node's device class (in `nodeIds` order): null for a node with no report naming its executor yet. */
export async function nodeDeviceClasses (db: Kysely<Database>, nodeIds: string[]): Promise<Array<string | null>> {
  if (nodeIds.length === 0) return []
  // One ledger row a node, newest first by the (node_id, created_at) index, whatever the run.
  const rows = await db.selectFrom('nodes')
    .leftJoinLateral((eb) => eb.selectFrom('ledger').select('ledger.executor')
      .whereRef('ledger.node_id', '=', 'nodes.id').where('ledger.executor', 'is not', null)
      .orderBy('ledger.created_at', 'desc').limit(1).as('latest'), (join) => join.onTrue())
    .select(['nodes.id', 'nodes.hardware', 'latest.executor'])
    .where('nodes.id', 'in', nodeIds).execute()
  const classOf = new Map(rows.map((r) => [r.id, deviceClass(r.executor, r.hardware)]))
  return nodeIds.map((id) => classOf.get(id) ?? null)
}

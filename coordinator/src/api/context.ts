import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { Presence } from '../p2p/presence.ts'
import type { Logger } from '../log.ts'
import type { ChangeFeed } from '../events/change-feed.ts'

/** What every procedure can reach; built once per request. */
export interface ApiContext {
  db: Kysely<Database>
  presence: Presence
  log: Logger
  changes: ChangeFeed
}

import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { Presence } from '../p2p/presence.ts'
import type { RecentRevocations } from '../nodes/recent-revocations.ts'
import type { Logger } from '../log.ts'
import type { ChangeFeed } from '../events/change-feed.ts'
import type { SessionUser } from '../accounts/accounts.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { SetupCode } from '../accounts/setup-code.ts'
import type { SignInThrottle } from '../accounts/sign-in-throttle.ts'
import type { InstallLimits } from '../runs/install-limits.ts'
import type { ApiRates } from '../limits/api-rates.ts'
import type { FolderCache } from '../checkpoints/checkpoint-folder.ts'
import type { DatasetLibrary } from '../datasets/dataset-library.ts'

/** What every procedure can reach, shared by all requests. */
export interface ApiServices {
  db: Kysely<Database>
  presence: Presence
  /** peers revoked lately, listed to agents in heartbeat replies */
  revocations: RecentRevocations
  log: Logger
  changes: ChangeFeed
  blobs: BlobStore
  /** the libp2p addresses agents dial, for the "join" command the dashboard shows */
  multiaddrs: () => string[]
  /** the one-time code that makes the first admin through the web, while no admin exists */
  setupCode: SetupCode
  /** anyone may sign up as an organizer (an install setting for open communities) */
  openOrganizing: boolean
  /** sign-in attempts, failed and in flight, per account, address and IPv6 /48 (sign-in-throttle.ts) */
  signIns: SignInThrottle
  /** model size, sequence length, evaluation work, open runs and dataset storage a run may ask of this install */
  limits: InstallLimits
  /** sign-ups per address, run creations and dataset uploads per person */
  rates: ApiRates
  /** checkpoint folders built for earlier requests (shared with the plain-HTTP downloads) */
  folderCache: FolderCache
  /** uploaded datasets and their tokenizing */
  datasets: DatasetLibrary
}

/** Per request: the services, who is signed in, and how to set or clear their cookie. */
export interface ApiContext extends ApiServices {
  user: SessionUser | null
  sessionToken: string | undefined
  setSessionCookie: (token: string, expiresAt: Date) => void
  clearSessionCookie: () => void
  /** the address the request came from (the socket's peer) */
  clientAddress: string
  setResponseHeader: (name: string, value: string) => void
}

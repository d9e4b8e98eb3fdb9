import { HEARTBEAT_PROTOCOL, MAX_REVOKED_PER_HEARTBEAT, ProtocolError, heartbeatRequestSchema } from '@barnraise/protocol'
import type { HeartbeatResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { Logger } from '../log.ts'
import { CoordinatorError } from '../errors.ts'
import { touchNode } from '../nodes/nodes.ts'
import type { RecentRevocations } from '../nodes/recent-revocations.ts'
import { ProtocolService } from './protocol-service.ts'
import type { ProtocolComponents } from './protocol-service.ts'
import { refusalFor } from './reply-refusal.ts'

export interface HeartbeatServiceComponents extends ProtocolComponents {
  db: Kysely<Database>
  log: Logger
  onHeartbeat?: (peerId: string, status: string) => void
  /** Peers revoked lately, listed in every reply so agents stop serving them blob blocks. */
  revocations?: RecentRevocations
}

/** Serves `/barnraise/heartbeat/1.0.0`: an enrolled node says it is alive and what it is doing. */
export class HeartbeatService extends ProtocolService {
  readonly #c: HeartbeatServiceComponents

  constructor (components: HeartbeatServiceComponents) {
    super(components, HEARTBEAT_PROTOCOL)
    this.#c = components
  }

  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString()
    const log = this.#c.log.child('heartbeat')
    await this.replyOnce(stream, heartbeatRequestSchema, async (request): Promise<HeartbeatResponse> => {
      await touchNode(this.#c.db, peerId)
      this.#c.onHeartbeat?.(peerId, request.status)
      // The whole window's list every time, rather than what changed since the agent's last
      // heartbeat: heartbeat requests are parsed strictly, so a cursor in them would get a newer
      // agent refused by every older coordinator, and a list repeated for minutes survives a
      // dropped reply, a reconnect or an agent restart. Revocations are rare, so the list is
      // nearly always empty (and the reply as it was); at worst 256 ids, about 14 KB.
      const revoked = this.#c.revocations?.list(MAX_REVOKED_PER_HEARTBEAT) ?? []
      return { ok: true, serverTime: new Date().toISOString(), ...(revoked.length > 0 ? { revoked } : {}) }
    }, (err) => {
      if (!(err instanceof ProtocolError || err instanceof CoordinatorError)) log.error('heartbeat failed', { peerId, err })
      return refusalFor(err)
    })
  }
}

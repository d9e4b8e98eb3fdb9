import { HEARTBEAT_PROTOCOL, ProtocolError, heartbeatRequestSchema } from '@barnraise/protocol'
import type { HeartbeatResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { Logger } from '../log.ts'
import { CoordinatorError } from '../errors.ts'
import { touchNode } from '../nodes/nodes.ts'
import { ProtocolService } from './protocol-service.ts'
import type { ProtocolComponents } from './protocol-service.ts'
import { refusalFor } from './reply-refusal.ts'

export interface HeartbeatServiceComponents extends ProtocolComponents {
  db: Kysely<Database>
  log: Logger
  onHeartbeat?: (peerId: string, status: string) => void
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
      return { ok: true, serverTime: new Date().toISOString() }
    }, (err) => {
      if (!(err instanceof ProtocolError || err instanceof CoordinatorError)) log.error('heartbeat failed', { peerId, err })
      return refusalFor(err)
    })
  }
}

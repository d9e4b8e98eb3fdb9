import { HEARTBEAT_PROTOCOL, REQUEST_TIMEOUT_MS, JsonStream, ProtocolError, heartbeatRequestSchema } from '@barnraise/protocol'
import type { HeartbeatResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { Logger } from '../log.ts'
import { CoordinatorError } from '../errors.ts'
import { touchNode } from '../nodes/nodes.ts'
import { MAX_INBOUND_STREAMS } from './constants.ts'
import { refusalFor } from './reply-refusal.ts'

export interface HeartbeatServiceComponents {
  libp2p: Libp2p
  db: Kysely<Database>
  log: Logger
  onHeartbeat?: (peerId: string, status: string) => void
}

/** Serves `/barnraise/heartbeat/1.0.0`: an enrolled node says it is alive and what it is doing. */
export class HeartbeatService {
  readonly #c: HeartbeatServiceComponents

  constructor (components: HeartbeatServiceComponents) {
    this.#c = components
  }

  async start (): Promise<void> {
    await this.#c.libp2p.handle(HEARTBEAT_PROTOCOL, async (stream, connection) => { await this.#serve(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_STREAMS
    })
  }

  async stop (): Promise<void> {
    await this.#c.libp2p.unhandle(HEARTBEAT_PROTOCOL)
  }

  async #serve (stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString()
    const log = this.#c.log.child('heartbeat')
    const messages = new JsonStream(stream)
    let reply: HeartbeatResponse
    try {
      const request = await messages.read(heartbeatRequestSchema, REQUEST_TIMEOUT_MS)
      await touchNode(this.#c.db, peerId)
      this.#c.onHeartbeat?.(peerId, request.status)
      reply = { ok: true, serverTime: new Date().toISOString() }
    } catch (err) {
      reply = refusalFor(err)
      if (!(err instanceof ProtocolError || err instanceof CoordinatorError)) log.error('heartbeat failed', { peerId, err })
    }
    try {
      await messages.write(reply)
      await messages.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  }
}

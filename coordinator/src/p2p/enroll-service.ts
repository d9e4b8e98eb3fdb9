import { ENROLL_PROTOCOL, REQUEST_TIMEOUT_MS, JsonStream, ProtocolError, enrollRequestSchema } from '@barnraise/protocol'
import type { EnrollResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { Logger } from '../log.ts'
import { CoordinatorError } from '../errors.ts'
import { enrollNode } from '../nodes/nodes.ts'
import { MAX_INBOUND_STREAMS } from './constants.ts'
import { refusalFor } from './reply-refusal.ts'

export interface EnrollServiceComponents {
  libp2p: Libp2p
  db: Kysely<Database>
  log: Logger
  /** Called after a node is enrolled or re-joins, so live views can refresh. */
  onEnrolled?: (peerId: string) => void
}

/** Serves `/barnraise/enroll/1.0.0`: one request, one reply, then the stream closes. */
export class EnrollService {
  readonly #c: EnrollServiceComponents

  constructor (components: EnrollServiceComponents) {
    this.#c = components
  }

  async start (): Promise<void> {
    await this.#c.libp2p.handle(ENROLL_PROTOCOL, async (stream, connection) => { await this.#serve(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_STREAMS
    })
  }

  async stop (): Promise<void> {
    await this.#c.libp2p.unhandle(ENROLL_PROTOCOL)
  }

  async #serve (stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString()
    const log = this.#c.log.child('enroll')
    const messages = new JsonStream(stream)
    let reply: EnrollResponse
    try {
      const request = await messages.read(enrollRequestSchema, REQUEST_TIMEOUT_MS)
      const enrolled = await enrollNode(this.#c.db, peerId, request)
      reply = { ok: true, ...enrolled }
      log.info(enrolled.rejoined ? 'node re-joined' : 'node enrolled', { peerId, nodeId: enrolled.nodeId, organizationId: enrolled.organizationId })
      this.#c.onEnrolled?.(peerId)
    } catch (err) {
      reply = refusalFor(err)
      const expected = err instanceof ProtocolError || err instanceof CoordinatorError
      if (expected) log.warn('enrollment refused', { peerId, code: reply.code, reason: reply.message })
      else log.error('enrollment failed', { peerId, err })
    }
    try {
      await messages.write(reply)
      await messages.close()
    } catch (err) {
      log.warn('could not send enrollment reply', { peerId, err })
      stream.abort(err as Error)
    }
  }
}

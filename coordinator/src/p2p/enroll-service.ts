import { ENROLL_PROTOCOL, ProtocolError, WORK_REQUEST_EXTENSIONS, enrollRequestSchema } from '@barnraise/protocol'
import type { EnrollResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { Logger } from '../log.ts'
import { CoordinatorError } from '../errors.ts'
import { enrollNode } from '../nodes/nodes.ts'
import { ProtocolService } from './protocol-service.ts'
import type { ProtocolComponents } from './protocol-service.ts'
import { refusalFor } from './reply-refusal.ts'

export interface EnrollServiceComponents extends ProtocolComponents {
  db: Kysely<Database>
  log: Logger
  /** Called after a node is enrolled or re-joins, so live views can refresh. */
  onEnrolled?: (peerId: string) => void
  /** Unrevoked nodes one organization may hold (nodes.ts's default when absent); a new node past it is refused `ERR_QUOTA_EXCEEDED`. */
  maxNodesPerOrganization?: number
}

/** Serves `/barnraise/enroll/1.0.0`: one request, one reply, then the stream closes. */
export class EnrollService extends ProtocolService {
  readonly #c: EnrollServiceComponents

  constructor (components: EnrollServiceComponents) {
    super(components, ENROLL_PROTOCOL)
    this.#c = components
  }

  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString()
    const log = this.#c.log.child('enroll')
    await this.replyOnce(stream, enrollRequestSchema, async (request): Promise<EnrollResponse> => {
      const enrolled = await enrollNode(this.#c.db, peerId, request, this.#c.maxNodesPerOrganization !== undefined ? { maxNodesPerOrganization: this.#c.maxNodesPerOrganization } : {})
      log.info(enrolled.rejoined ? 'node re-joined' : 'node enrolled', { peerId, nodeId: enrolled.nodeId, organizationId: enrolled.organizationId })
      this.#c.onEnrolled?.(peerId)
      return { ok: true, ...enrolled, workFields: [...WORK_REQUEST_EXTENSIONS] }
    }, (err) => {
      const reply = refusalFor(err)
      const expected = err instanceof ProtocolError || err instanceof CoordinatorError
      if (expected) log.warn('enrollment refused', { peerId, code: reply.code, reason: reply.message })
      else log.error('enrollment failed', { peerId, err })
      return reply
    }, (err) => { log.warn('could not send enrollment reply', { peerId, err }) })
  }
}

import { WORK_PROTOCOL, workRequestSchema } from '@barnraise/protocol'
import type { ExecutorKind, ScoreResult, UnitDecline, WorkResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import { ProtocolService } from './protocol-service.ts'
import type { ProtocolComponents } from './protocol-service.ts'
import { refusalFor } from './reply-refusal.ts'

/** What the work service needs from the round engine. */
export interface WorkSource {
  /** The node's work; `decline` first hands back the unit it cannot train; `after` looks ahead past the unit it trains. */
  workFor: (peerId: string, decline?: UnitDecline, scored?: ScoreResult, after?: string, executor?: ExecutorKind) => Promise<WorkResponse>
}

/** Serves `/barnraise/work/1.0.0`: an idle node asks, and gets a work unit or "wait". */
export class WorkService extends ProtocolService {
  readonly #source: WorkSource
  readonly #log: Logger

  constructor (components: ProtocolComponents & { source: WorkSource, log: Logger }) {
    super(components, WORK_PROTOCOL)
    this.#source = components.source
    this.#log = components.log.child('work')
  }

  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString()
    await this.replyOnce(stream, workRequestSchema, async (request): Promise<WorkResponse> => await this.#source.workFor(peerId, request.decline, request.scored, request.after, request.executor), (err): WorkResponse => {
      const refusal = refusalFor(err)
      if (refusal.code === 'ERR_INTERNAL') this.#log.error('work request failed', { peerId, err })
      return { kind: 'refused', code: refusal.code, message: refusal.message }
    })
  }
}

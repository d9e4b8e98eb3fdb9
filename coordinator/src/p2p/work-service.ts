import { JsonStream, REQUEST_TIMEOUT_MS, WORK_PROTOCOL, workRequestSchema } from '@barnraise/protocol'
import type { UnitDecline, WorkResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import { MAX_INBOUND_STREAMS } from './constants.ts'
import { refusalFor } from './reply-refusal.ts'

/** What the work service needs from the round engine. */
export interface WorkSource {
  /** The node's work; `decline` first hands back the unit it cannot train. */
  workFor: (peerId: string, decline?: UnitDecline) => Promise<WorkResponse>
}

/** Serves `/barnraise/work/1.0.0`: an idle node asks, and gets a work unit or "wait". */
export class WorkService {
  readonly #libp2p: Libp2p
  readonly #source: WorkSource
  readonly #log: Logger

  constructor (components: { libp2p: Libp2p, source: WorkSource, log: Logger }) {
    this.#libp2p = components.libp2p
    this.#source = components.source
    this.#log = components.log.child('work')
  }

  async start (): Promise<void> {
    await this.#libp2p.handle(WORK_PROTOCOL, async (stream, connection) => { await this.#serve(stream, connection) }, {
      maxInboundStreams: MAX_INBOUND_STREAMS
    })
  }

  async stop (): Promise<void> {
    await this.#libp2p.unhandle(WORK_PROTOCOL)
  }

  async #serve (stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString()
    const messages = new JsonStream(stream)
    let reply: WorkResponse
    try {
      const request = await messages.read(workRequestSchema, REQUEST_TIMEOUT_MS)
      reply = await this.#source.workFor(peerId, request.decline)
    } catch (err) {
      const refusal = refusalFor(err)
      if (refusal.code === 'ERR_INTERNAL') this.#log.error('work request failed', { peerId, err })
      reply = { kind: 'refused', code: refusal.code, message: refusal.message }
    }
    try {
      await messages.write(reply)
      await messages.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  }
}

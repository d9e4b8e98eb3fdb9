import {
  BLOB_CHUNK_BYTES, CHUNK_TIMEOUT_MS, JsonStream, REQUEST_TIMEOUT_MS, ProtocolError, REPORT_PROTOCOL, reportHeaderSchema
} from '@barnraise/protocol'
import type { ReportHeader, ReportResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import { ProtocolService } from './protocol-service.ts'
import { refusalFor } from './reply-refusal.ts'

/** A report the engine may still refuse; it reads the payload only once the header passes. */
export interface ReportSink {
  /**
   * Checks the header against the node's assignment and returns how many payload bytes to
   * read, or a refusal (already written to the ledger) when the header alone condemns it.
   */
  admit: (peerId: string, header: ReportHeader) => Promise<{ ok: true, payloadBytes: number } | { ok: false, code: string, message: string }>
  /** Verifies and folds the payload; returns the verdict (the ledger row is written either way). */
  settle: (peerId: string, header: ReportHeader, payload: Uint8Array) => Promise<ReportResponse>
}

/**
 * Serves `/barnraise/report/1.0.0`: a signed header frame, our admission, then the encoded
 * pseudo-gradient in chunks and our verdict. A header that condemns the report (unassigned,
 * stale, oversized, wrong codec) is refused before any payload byte is sent, and the payload
 * is never read past the size the header announced.
 */
export class ReportService extends ProtocolService {
  readonly #sink: ReportSink
  readonly #log: Logger

  constructor (components: { libp2p: Libp2p, sink: ReportSink, log: Logger }) {
    super(components.libp2p, REPORT_PROTOCOL)
    this.#sink = components.sink
    this.#log = components.log.child('report')
  }

  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString()
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    let reply: ReportResponse
    try {
      const header = await messages.read(reportHeaderSchema, REQUEST_TIMEOUT_MS)
      const admitted = await this.#sink.admit(peerId, header)
      if (!admitted.ok) {
        await messages.write({ proceed: false, code: admitted.code, message: admitted.message })
        await messages.close()
        return
      } else {
        await messages.write({ proceed: true })
        const payload = new Uint8Array(admitted.payloadBytes)
        let received = 0
        while (received < payload.byteLength) {
          const frame = await messages.readFrame(CHUNK_TIMEOUT_MS)
          if (received + frame.byteLength > payload.byteLength) {
            throw new ProtocolError('ERR_MESSAGE_TOO_LARGE', `payload is larger than the ${payload.byteLength} bytes the header announced`)
          }
          payload.set(frame, received)
          received += frame.byteLength
        }
        reply = await this.#sink.settle(peerId, header, payload)
      }
    } catch (err) {
      const refusal = refusalFor(err)
      if (refusal.code === 'ERR_INTERNAL') this.#log.error('report handling failed', { peerId, err })
      else this.#log.warn('report refused', { peerId, code: refusal.code, reason: refusal.message })
      reply = { ok: false, outcome: 'refused', code: refusal.code, message: refusal.message }
    }
    try {
      await messages.write(reply)
      await messages.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  }
}

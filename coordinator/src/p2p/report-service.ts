import {
  BLOB_CHUNK_BYTES, JsonStream, ProtocolError, REPORT_PROTOCOL, REQUEST_TIMEOUT_MS, reportHeaderSchema
} from '@barnraise/protocol'
import type { ReportHeader, ReportResponse } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import { transferDeadlineMs } from './peer-limits.ts'
import type { PeerLimits } from './peer-limits.ts'
import { ProtocolService } from './protocol-service.ts'
import type { ProtocolComponents } from './protocol-service.ts'
import { refusalFor } from './reply-refusal.ts'

/** A report the engine may still refuse; it reads the payload only once the header passes. */
export interface ReportSink {
  /**
   * Checks the header against the node's assignment and returns how many payload bytes to
   * read, or a refusal (already written to the ledger) when the header alone condemns it.
   */
  admit: (peerId: string, header: ReportHeader) => Promise<{ ok: true, payloadBytes: number } | { ok: false, code: string, message: string }>
  /**
   * Verifies and folds the payload; returns the verdict (the ledger row is written either way).
   * `uploadSeconds`: from our "proceed" to the payload's last byte, the node's link as we saw it.
   */
  settle: (peerId: string, header: ReportHeader, payload: Uint8Array, uploadSeconds: number) => Promise<ReportResponse>
  /** Whether an upload of these bytes for this unit can still count (its round open; the unit out, or this report's retry): asked during long uploads. */
  stillWanted: (assignmentId: string, sha256: string) => Promise<boolean>
}

/** How often a long upload asks whether its round is still open: a closed round's upload is cut, not buffered to the end. */
const STILL_WANTED_EVERY_MS = 5_000

/** Limits on report uploads as a whole, beside the per-peer ones (PeerLimits). */
export interface ReportUploadLimits {
  /**
   * Payload bytes all uploads in progress may hold at once: each is buffered whole, from its
   * admission until its verdict. Past it a new upload is answered `ERR_BUSY` before admission
   * (one upload is always let in when none is in flight, or a report larger than this could
   * never be sent).
   */
  maxInFlightBytes: number
  /**
   * How far an upload may fall behind PeerLimits.minBytesPerSecond, counted from our "proceed":
   * its start-up time. Past it, bytes received must keep up with that rate on average (checked
   * on each frame, and by the read's timeout between frames), so a sender that stops short of
   * the end and trickles is cut when it falls behind, not at its whole deadline.
   */
  rateGraceMs: number
}

export const DEFAULT_REPORT_UPLOAD_LIMITS: ReportUploadLimits = {
  maxInFlightBytes: 8192 * 1024 * 1024,
  rateGraceMs: 30_000
}

/**
 * Serves `/barnraise/report/1.0.0`: a signed header frame, our admission, then the encoded
 * pseudo-gradient in chunks and our verdict. A header that condemns the report (unassigned,
 * stale, oversized, wrong codec) is refused before any payload byte is sent, and the payload
 * is never read past the size the header announced. One upload per work unit at a time, and
 * all of them together hold at most ReportUploadLimits.maxInFlightBytes; a sender that stalls
 * or falls behind the minimum rate is cut off; a node revoked mid-upload is refused.
 */
export class ReportService extends ProtocolService {
  readonly #sink: ReportSink
  readonly #log: Logger
  readonly #limits: PeerLimits
  readonly #isRevoked: (peerId: string) => Promise<boolean>
  readonly #uploads: ReportUploadLimits
  /** Uploads in progress (or in admission), as "<peer id> <assignment id>". */
  readonly #uploading = new Set<string>()
  /** Payload bytes held by admitted uploads until their verdicts (ReportUploadLimits.maxInFlightBytes). */
  #inFlightBytes = 0

  constructor (components: ProtocolComponents & { sink: ReportSink, log: Logger, limits: PeerLimits, isRevoked: (peerId: string) => Promise<boolean>, uploads?: Partial<ReportUploadLimits> }) {
    super(components, REPORT_PROTOCOL)
    this.#sink = components.sink
    this.#log = components.log.child('report')
    this.#limits = components.limits
    this.#isRevoked = components.isRevoked
    this.#uploads = { ...DEFAULT_REPORT_UPLOAD_LIMITS, ...components.uploads }
  }

  /** Whether `bytes` more fit beside the uploads in flight. */
  #fits (bytes: number): boolean {
    return this.#inFlightBytes === 0 || this.#inFlightBytes + bytes <= this.#uploads.maxInFlightBytes
  }

  #busyRefusal (): { ok: false, code: string, message: string } {
    const mib = (bytes: number): string => `${Math.ceil(bytes / 1024 / 1024)} MiB`
    return { ok: false, code: 'ERR_BUSY', message: `the coordinator is already receiving ${mib(this.#inFlightBytes)} of reports, as much as it holds at once (${mib(this.#uploads.maxInFlightBytes)}, --max-report-upload-mb); send this report again in a minute` }
  }


  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    const peerId = connection.remotePeer.toString()
    const messages = new JsonStream(stream, BLOB_CHUNK_BYTES)
    let reply: ReportResponse
    let claimed: string | undefined
    let reserved = 0
    try {
      const header = await messages.read(reportHeaderSchema, REQUEST_TIMEOUT_MS)
      const unit = header.metadata.assignmentId
      // Claimed before admission, which writes (the unit's claimed compute time): a second stream
      // is refused as busy having changed nothing. Keyed by the sender too, so a peer that guessed
      // a unit's id holds only its own key (admission refuses it), never the unit's node's; checked
      // and claimed with no await between, so two streams cannot both pass.
      const key = `${peerId} ${unit}`
      let admitted: Awaited<ReturnType<ReportSink['admit']>>
      if (this.#uploading.has(key)) {
        admitted = { ok: false, code: 'ERR_BUSY', message: `a report for work unit ${unit} is already being uploaded` }
      } else if (!this.#fits(header.metadata.payloadBytes)) {
        // Before admission, which writes: the usual busy answer changes nothing.
        admitted = this.#busyRefusal()
      } else {
        this.#uploading.add(key)
        claimed = key
        admitted = await this.#sink.admit(peerId, header)
        // Reserved only for an admitted header (a stranger's claimed size holds nothing), with no
        // await since the check; others admitted meanwhile may have taken the room.
        if (admitted.ok) {
          if (this.#fits(admitted.payloadBytes)) {
            reserved = admitted.payloadBytes
            this.#inFlightBytes += reserved
          } else {
            admitted = this.#busyRefusal()
          }
        }
      }
      if (!admitted.ok) {
        await messages.write({ proceed: false, code: admitted.code, message: admitted.message })
        await messages.close()
        return
      } else {
        await messages.write({ proceed: true })
        const started = performance.now()
        const payload = new Uint8Array(admitted.payloadBytes)
        const deadline = Date.now() + transferDeadlineMs(payload.byteLength, this.#limits)
        let received = 0
        let asked = performance.now()
        const { minBytesPerSecond } = this.#limits
        // When `received` bytes fall behind the minimum rate: the grace, then one second per minBytesPerSecond.
        const behindAt = (): number => started + this.#uploads.rateGraceMs + received / minBytesPerSecond * 1000
        const behind = (): ProtocolError => new ProtocolError('ERR_TIMEOUT', `the payload fell behind the minimum rate: ${received} of ${payload.byteLength} bytes ` +
          `in ${((performance.now() - started) / 1000).toFixed(1)} s, where an upload must average ${minBytesPerSecond} bytes/s after its first ${this.#uploads.rateGraceMs / 1000} s`)
        while (received < payload.byteLength) {
          const left = deadline - Date.now()
          if (left <= 0) throw new ProtocolError('ERR_TIMEOUT', `the payload came too slowly (${received} of ${payload.byteLength} bytes in the time allowed)`)
          if (performance.now() >= behindAt()) throw behind()
          // A whole report's buffer is held while it uploads (hours for the largest models at the
          // slowest rate allowed): once its round has closed it can only be refused, so stop now.
          if (performance.now() - asked >= STILL_WANTED_EVERY_MS) {
            asked = performance.now()
            if (!await this.#sink.stillWanted(unit, header.metadata.payloadSha256)) throw new ProtocolError('ERR_STALE', `the round closed while the report was uploading (${received} of ${payload.byteLength} bytes in)`)
          }
          // The read's timeout is the timer: a sender that sends nothing more is cut when it falls behind.
          const untilBehind = Math.max(1, Math.ceil(behindAt() - performance.now()))
          const timeout = Math.min(left, this.#limits.frameIdleTimeoutMs, untilBehind)
          const frame = await messages.readFrame(timeout).catch((err: unknown) => {
            throw err instanceof ProtocolError && err.code === 'ERR_TIMEOUT' && timeout === untilBehind ? behind() : err
          })
          if (received + frame.byteLength > payload.byteLength) {
            throw new ProtocolError('ERR_MESSAGE_TOO_LARGE', `payload is larger than the ${payload.byteLength} bytes the header announced`)
          }
          payload.set(frame, received)
          received += frame.byteLength
        }
        // Revocation may have landed while the bytes were on the wire.
        if (await this.#isRevoked(peerId)) throw new ProtocolError('ERR_NODE_REVOKED', 'this node was revoked by its organization; its reports are refused')
        reply = await this.#sink.settle(peerId, header, payload, (performance.now() - started) / 1000)
      }
    } catch (err) {
      const refusal = refusalFor(err)
      if (refusal.code === 'ERR_INTERNAL') this.#log.error('report handling failed', { peerId, err })
      else this.#log.warn('report refused', { peerId, code: refusal.code, reason: refusal.message })
      reply = { ok: false, outcome: 'refused', code: refusal.code, message: refusal.message }
    } finally {
      if (claimed !== undefined) this.#uploading.delete(claimed)
      this.#inFlightBytes -= reserved
    }
    try {
      await messages.write(reply)
      await messages.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  }
}

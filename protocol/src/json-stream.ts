import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import type { z } from 'zod'
import { ProtocolError } from './errors.ts'
import { decodeJsonMessage, encodeJsonMessage } from './json-messages.ts'
import { MAX_CONTROL_MESSAGE_BYTES } from './protocol-ids.ts'

/** How long either side waits for the other's message before giving up. */
export const DEFAULT_MESSAGE_TIMEOUT_MS = 10_000

/**
 * Flow control. libp2p hands a stream's bytes to its reader as they arrive and yamux grants the
 * sender more window as soon as bytes arrive, not when they are read, so a reader slower than
 * its link (a busy agent, a coordinator under load) would buffer without bound, and libp2p
 * resets a stream past 4 MiB unread. A JsonStream pauses its stream (yamux then stops granting
 * window) once more than PAUSE_AT bytes are unread and resumes it when its reader catches up;
 * what arrives meanwhile (at most the sender's remaining window, 16 MiB by default) is held.
 * Unread bytes stay under PAUSE_AT plus two windows; BUFFER_CAP is the hard limit past which the
 * stream is reset.
 */
const PAUSE_AT = 1024 * 1024
const BUFFER_CAP = 48 * 1024 * 1024

/** libp2p's errors for a stream or connection that ended under a read. */
const STREAM_GONE = new Set(['UnexpectedEOFError', 'StreamResetError', 'StreamAbortedError', 'StreamStateError', 'ConnectionClosedError'])

/**
 * Length-prefixed frames over a libp2p stream: JSON control messages (at most
 * MAX_CONTROL_MESSAGE_BYTES) and, for blobs and reports, raw byte chunks up to
 * `maxFrameBytes`. A longer frame is refused before it is buffered: a JSON message by the
 * control limit even where chunks may be larger, so a stream's header (what a stranger may send
 * before anything is checked) never holds more than that.
 */
export class JsonStream {
  readonly #lp
  readonly #stream: Stream
  readonly #maxFrameBytes: number
  readonly #pauseAt: number
  /** The longest frame the read in progress takes (MAX_CONTROL_MESSAGE_BYTES for a JSON message, else `maxFrameBytes`), and what it reads. */
  #frameLimit: number
  #reading: 'message' | 'frame' = 'frame'
  /** Bytes received and not yet read as frames (length prefixes counted approximately). */
  #unread = 0
  #pausing = false

  constructor (stream: Stream, maxFrameBytes = MAX_CONTROL_MESSAGE_BYTES) {
    this.#stream = stream
    this.#maxFrameBytes = Math.max(maxFrameBytes, MAX_CONTROL_MESSAGE_BYTES)
    // Resuming at half of it leaves two whole frames unread, so a read never waits on a paused stream.
    this.#pauseAt = Math.max(PAUSE_AT, 4 * this.#maxFrameBytes)
    this.#frameLimit = this.#maxFrameBytes
    this.#lp = lpStream(stream, { maxDataLength: this.#maxFrameBytes, maxBufferSize: BUFFER_CAP, lengthDecoder: (prefix) => this.#frameLength(prefix) })
    stream.maxReadBufferLength = Math.max(stream.maxReadBufferLength, BUFFER_CAP)
    stream.addEventListener('message', (evt) => {
      this.#unread += evt.data.byteLength
      if (this.#unread <= this.#pauseAt || this.#pausing) return
      // Not from inside the event: resume() dispatches what arrived while paused and only then
      // tells yamux to grant window again, which would undo a pause made during that dispatch.
      this.#pausing = true
      queueMicrotask(() => {
        this.#pausing = false
        if (this.#unread > this.#pauseAt && stream.readStatus === 'readable') stream.pause()
      })
    })
  }

  /** Reads one raw frame. */
  async readFrame (timeoutMs = DEFAULT_MESSAGE_TIMEOUT_MS): Promise<Uint8Array> {
    return await this.#read(timeoutMs, 'frame')
  }

  async #read (timeoutMs: number, reading: 'message' | 'frame'): Promise<Uint8Array> {
    this.#reading = reading
    this.#frameLimit = reading === 'message' ? MAX_CONTROL_MESSAGE_BYTES : this.#maxFrameBytes
    try {
      this.#resumeIfCaughtUp()
      const frame = (await this.#lp.read({ signal: AbortSignal.timeout(timeoutMs) })).subarray()
      this.#unread = Math.max(0, this.#unread - frame.byteLength - lengthPrefixBytes(frame.byteLength))
      this.#resumeIfCaughtUp()
      return frame
    } catch (err) {
      if (err instanceof ProtocolError) throw err
      const e = err as { name?: string, code?: string }
      if (e.name === 'InvalidDataLengthError' || e.code === 'ERR_MSG_DATA_TOO_LONG') {
        throw new ProtocolError('ERR_MESSAGE_TOO_LARGE', `frame exceeds ${this.#maxFrameBytes} bytes`)
      }
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        throw new ProtocolError('ERR_TIMEOUT', `no message within ${timeoutMs} ms`)
      }
      // The peer went away (a restart, a dropped link): not a malformed message, and worth a retry.
      if (e.name !== undefined && STREAM_GONE.has(e.name)) {
        throw new ProtocolError('ERR_STREAM_CLOSED', `the stream closed before a whole message arrived (${(err as Error).message})`)
      }
      throw new ProtocolError('ERR_MALFORMED_MESSAGE', `could not read message: ${(err as Error).message}`)
    }
  }

  /**
   * The length a frame's prefix (an unsigned varint) gives, refused as soon as it passes the
   * read's limit rather than once the frame is buffered; a RangeError asks for another byte.
   */
  #frameLength (prefix: { byteLength: number, get: (index: number) => number }): number {
    // Eight bytes of varint reach 2^56, far past any limit: more is a prefix that never ends.
    if (prefix.byteLength > 8) throw new ProtocolError('ERR_MALFORMED_MESSAGE', 'a frame\'s length prefix runs past 8 bytes')
    let length = 0
    for (let i = 0; i < prefix.byteLength; i++) {
      const byte = prefix.get(i)
      length += (byte & 0x7f) * 2 ** (7 * i)
      if (length > this.#frameLimit) throw new ProtocolError('ERR_MESSAGE_TOO_LARGE', `${this.#reading} exceeds ${this.#frameLimit} bytes`)
      if ((byte & 0x80) === 0) return length
    }
    throw new RangeError('the length prefix goes on')
  }

  #resumeIfCaughtUp (): void {
    if (this.#unread <= this.#pauseAt / 2 && this.#stream.readStatus === 'paused') this.#stream.resume()
  }

  /** Writes one raw frame. */
  async writeFrame (bytes: Uint8Array, timeoutMs = DEFAULT_MESSAGE_TIMEOUT_MS): Promise<void> {
    await this.#lp.write(bytes, { signal: AbortSignal.timeout(timeoutMs) })
  }

  /** Reads one JSON message and validates it against `schema`. */
  async read<S extends z.ZodType> (schema: S, timeoutMs = DEFAULT_MESSAGE_TIMEOUT_MS): Promise<z.infer<S>> {
    return decodeJsonMessage(await this.#read(timeoutMs, 'message'), schema)
  }

  /** Writes one message. */
  async write (message: unknown, timeoutMs = DEFAULT_MESSAGE_TIMEOUT_MS): Promise<void> {
    await this.#lp.write(encodeJsonMessage(message), { signal: AbortSignal.timeout(timeoutMs) })
  }

  /** Closes our end gracefully, falling back to an abort if the peer does not cooperate. */
  async close (): Promise<void> {
    try {
      await this.#stream.close({ signal: AbortSignal.timeout(2_000) })
    } catch (err) {
      this.#stream.abort(err as Error)
    }
  }
}

/** The bytes of the unsigned varint that prefixes a frame of `length` bytes. */
function lengthPrefixBytes (length: number): number {
  let n = 1
  while (length >= 0x80) { length = Math.floor(length / 0x80); n++ }
  return n
}

import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import type { z } from 'zod'
import { ProtocolError } from './errors.ts'
import { decodeJsonMessage, encodeJsonMessage } from './json-messages.ts'
import { MAX_CONTROL_MESSAGE_BYTES } from './protocol-ids.ts'

/** How long either side waits for the other's message before giving up. */
export const DEFAULT_MESSAGE_TIMEOUT_MS = 10_000

/** libp2p's errors for a stream or connection that ended under a read. */
const STREAM_GONE = new Set(['UnexpectedEOFError', 'StreamResetError', 'StreamAbortedError', 'StreamStateError', 'ConnectionClosedError'])

/**
 * Length-prefixed frames over a libp2p stream: JSON control messages (at most
 * MAX_CONTROL_MESSAGE_BYTES) and, for blobs and reports, raw byte chunks up to
 * `maxFrameBytes`. A longer frame is refused before it is buffered.
 */
export class JsonStream {
  readonly #lp
  readonly #stream: Stream
  readonly #maxFrameBytes: number

  constructor (stream: Stream, maxFrameBytes = MAX_CONTROL_MESSAGE_BYTES) {
    this.#stream = stream
    this.#maxFrameBytes = Math.max(maxFrameBytes, MAX_CONTROL_MESSAGE_BYTES)
    this.#lp = lpStream(stream, { maxDataLength: this.#maxFrameBytes })
  }

  /** Reads one raw frame. */
  async readFrame (timeoutMs = DEFAULT_MESSAGE_TIMEOUT_MS): Promise<Uint8Array> {
    try {
      return (await this.#lp.read({ signal: AbortSignal.timeout(timeoutMs) })).subarray()
    } catch (err) {
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

  /** Writes one raw frame. */
  async writeFrame (bytes: Uint8Array, timeoutMs = DEFAULT_MESSAGE_TIMEOUT_MS): Promise<void> {
    await this.#lp.write(bytes, { signal: AbortSignal.timeout(timeoutMs) })
  }

  /** Reads one JSON message and validates it against `schema`. */
  async read<S extends z.ZodType> (schema: S, timeoutMs = DEFAULT_MESSAGE_TIMEOUT_MS): Promise<z.infer<S>> {
    const frame = await this.readFrame(timeoutMs)
    if (frame.byteLength > MAX_CONTROL_MESSAGE_BYTES) {
      throw new ProtocolError('ERR_MESSAGE_TOO_LARGE', `message exceeds ${MAX_CONTROL_MESSAGE_BYTES} bytes`)
    }
    return decodeJsonMessage(frame, schema)
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

import { lpStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import type { z } from 'zod'
import { ProtocolError } from './errors.ts'
import { decodeJsonMessage, encodeJsonMessage } from './json-messages.ts'
import { MAX_CONTROL_MESSAGE_BYTES } from './protocol-ids.ts'

/** How long either side waits for the other's message before giving up. */
export const DEFAULT_MESSAGE_TIMEOUT_MS = 10_000

/**
 * JSON messages over a libp2p stream, each length-prefixed; a frame longer than
 * `maxBytes` is refused before it is buffered.
 */
export class JsonStream {
  readonly #lp
  readonly #stream: Stream
  readonly #maxBytes: number

  constructor (stream: Stream, maxBytes = MAX_CONTROL_MESSAGE_BYTES) {
    this.#stream = stream
    this.#maxBytes = maxBytes
    this.#lp = lpStream(stream, { maxDataLength: maxBytes })
  }

  /** Reads one message and validates it against `schema`. */
  async read<S extends z.ZodType> (schema: S, timeoutMs = DEFAULT_MESSAGE_TIMEOUT_MS): Promise<z.infer<S>> {
    let frame
    try {
      frame = await this.#lp.read({ signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      const e = err as { name?: string, code?: string }
      if (e.name === 'InvalidDataLengthError' || e.code === 'ERR_MSG_DATA_TOO_LONG') {
        throw new ProtocolError('ERR_MESSAGE_TOO_LARGE', `message exceeds ${this.#maxBytes} bytes`)
      }
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        throw new ProtocolError('ERR_TIMEOUT', `no message within ${timeoutMs} ms`)
      }
      throw new ProtocolError('ERR_MALFORMED_MESSAGE', `could not read message: ${(err as Error).message}`)
    }
    return decodeJsonMessage(frame.subarray(), schema)
  }

  /** Writes one message. */
  async write (message: unknown, timeoutMs = DEFAULT_MESSAGE_TIMEOUT_MS): Promise<void> {
    await this.#lp.write(encodeJsonMessage(message, this.#maxBytes), { signal: AbortSignal.timeout(timeoutMs) })
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

import type { z } from 'zod'
import { JsonStream, ProtocolError, REQUEST_TIMEOUT_MS } from '@barnraise/protocol'
import type { StreamRate } from './stream-rate.ts'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'

/** Starts timing one inbound stream of a protocol; the returned function ends it (metrics/coordinator-metrics.ts). */
export type RequestTimer = (protocol: string) => () => void

/** Concurrent inbound streams per connection per protocol; agents need one or two. */
export const MAX_INBOUND_STREAMS = 4

/** What every protocol service is given. */
export interface ProtocolComponents {
  libp2p: Libp2p
  /** Times each inbound stream (--metrics). */
  requestTimer?: RequestTimer
  /** Inbound streams per peer id, shared by every protocol; none: unbounded. */
  streamRate?: StreamRate
  /** Told of a peer's stream refused for its rate (to log it). */
  onRateLimited?: (peerId: string, protocol: string) => void
}

/**
 * What every protocol service shares: it registers its handler for one protocol id with the
 * stream cap on `start()` and removes it on `stop()`, and resets a stream past its peer's rate
 * before reading a byte of it. Subclasses write only `serve`.
 */
export abstract class ProtocolService {
  readonly #libp2p: Libp2p
  readonly #protocol: string
  readonly #p: ProtocolComponents

  constructor (components: ProtocolComponents, protocol: string) {
    this.#libp2p = components.libp2p
    this.#protocol = protocol
    this.#p = components
  }

  async start (): Promise<void> {
    await this.#libp2p.handle(this.#protocol, async (stream, connection) => {
      const peerId = connection.remotePeer.toString()
      if (this.#p.streamRate !== undefined && !this.#p.streamRate.take(peerId)) {
        // No reply: each protocol answers in its own shape, and a reset costs the least.
        this.#p.onRateLimited?.(peerId, this.#protocol)
        stream.abort(new ProtocolError('ERR_RATE_LIMITED', 'too many streams from this peer; slow down'))
        return
      }
      const done = this.#p.requestTimer?.(this.#protocol)
      try {
        await this.serve(stream, connection)
      } finally {
        done?.()
      }
    }, {
      maxInboundStreams: MAX_INBOUND_STREAMS
    })
  }

  async stop (): Promise<void> {
    await this.#libp2p.unhandle(this.#protocol)
  }

  /** Answers one inbound stream; never throws (a failure is a typed reply, or the stream is aborted). */
  protected abstract serve (stream: Stream, connection: Connection): Promise<void>

  /**
   * One request, one reply: reads a `schema` message within the wire timeout, answers it (or
   * turns the error into a refusal with `refuse`), writes the reply and closes. A reply that
   * cannot be sent aborts the stream and is handed to `unsent`.
   */
  protected async replyOnce<S extends z.ZodType, R> (stream: Stream, schema: S, answer: (request: z.infer<S>) => Promise<R>, refuse: (err: unknown) => R, unsent?: (err: unknown) => void): Promise<void> {
    const messages = new JsonStream(stream)
    let reply: R
    try {
      reply = await answer(await messages.read(schema, REQUEST_TIMEOUT_MS))
    } catch (err) {
      reply = refuse(err)
    }
    try {
      await messages.write(reply)
      await messages.close()
    } catch (err) {
      unsent?.(err)
      stream.abort(err as Error)
    }
  }
}

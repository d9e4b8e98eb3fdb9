import type { z } from 'zod'
import { JsonStream, REQUEST_TIMEOUT_MS } from '@barnraise/protocol'
import type { Libp2p, Stream, Connection } from '@libp2p/interface'

/** Starts timing one inbound stream of a protocol; the returned function ends it (metrics/coordinator-metrics.ts). */
export type RequestTimer = (protocol: string) => () => void

/** Concurrent inbound streams per connection per protocol; agents need one or two. */
export const MAX_INBOUND_STREAMS = 4

/**
 * What every protocol service shares: it registers its handler for one protocol id with the
 * stream cap on `start()` and removes it on `stop()`. Subclasses write only `serve`.
 */
export abstract class ProtocolService {
  readonly #libp2p: Libp2p
  readonly #protocol: string
  readonly #timer: RequestTimer | undefined

  constructor (libp2p: Libp2p, protocol: string, timer?: RequestTimer) {
    this.#libp2p = libp2p
    this.#protocol = protocol
    this.#timer = timer
  }

  async start (): Promise<void> {
    await this.#libp2p.handle(this.#protocol, async (stream, connection) => {
      const done = this.#timer?.(this.#protocol)
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

import { EventEmitter, on } from 'node:events'

/** What changed; the dashboard refetches the queries of that topic. */
export type ChangeTopic = 'nodes' | 'runs' | 'ledger' | 'pledges'

export interface ChangeEvent { topic: ChangeTopic, runId?: string, at: string }

/**
 * An in-process feed of "something changed" events that tRPC subscriptions stream to the
 * dashboard over SSE. Events carry no data, only what to refetch, so a missed one costs a
 * stale view until the next event, never wrong data.
 */
export class ChangeFeed {
  readonly #emitter = new EventEmitter({ captureRejections: false })

  constructor () {
    this.#emitter.setMaxListeners(0)
  }

  /** Announces a change. */
  publish (topic: ChangeTopic, runId?: string): void {
    const event: ChangeEvent = { topic, at: new Date().toISOString(), ...(runId !== undefined ? { runId } : {}) }
    this.#emitter.emit('change', event)
  }

  /** Yields events until the signal aborts. */
  async * subscribe (signal: AbortSignal | undefined): AsyncGenerator<ChangeEvent> {
    for await (const [event] of on(this.#emitter, 'change', { signal })) {
      yield event as ChangeEvent
    }
  }
}

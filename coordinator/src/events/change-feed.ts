import { EventEmitter, on } from 'node:events'
import { CoordinatorError } from '../errors.ts'

/** What changed; the dashboard refetches the queries of that topic. */
export type ChangeTopic = 'nodes' | 'runs' | 'ledger' | 'pledges' | 'datasets'

export interface ChangeEvent { topic: ChangeTopic, runId?: string, at: string }

/** How many open streams the feed serves: all together, and from one address (a person's tabs). */
export interface ListenerLimits { total: number, perAddress: number }

export const DEFAULT_LISTENER_LIMITS: ListenerLimits = { total: 2000, perAddress: 64 }

/**
 * An in-process feed of "something changed" events that tRPC subscriptions stream to the
 * dashboard over SSE. Events carry no data, only what to refetch, so a missed one costs a
 * stale view until the next event, never wrong data. Each stream holds a socket and a
 * listener, so streams are capped in total and per address.
 */
export class ChangeFeed {
  readonly #emitter = new EventEmitter({ captureRejections: false })
  readonly #limits: ListenerLimits
  readonly #perAddress = new Map<string, number>()
  #total = 0

  constructor (limits: Partial<ListenerLimits> = {}) {
    this.#limits = { ...DEFAULT_LISTENER_LIMITS, ...limits }
    this.#emitter.setMaxListeners(0)
  }

  /** Announces a change. */
  publish (topic: ChangeTopic, runId?: string): void {
    const event: ChangeEvent = { topic, at: new Date().toISOString(), ...(runId !== undefined ? { runId } : {}) }
    this.#emitter.emit('change', event)
  }

  /** Yields events until the signal aborts, uncapped: for the coordinator's own listeners (the ledger-head signer). */
  async * watch (signal: AbortSignal): AsyncGenerator<ChangeEvent> {
    for await (const [event] of on(this.#emitter, 'change', { signal })) {
      yield event as ChangeEvent
    }
  }

  /** Streams open now, in total and from `address`. */
  listeners (address?: string): number {
    return address === undefined ? this.#total : this.#perAddress.get(address) ?? 0
  }

  /**
   * Opens a stream for `address` that yields events until the signal aborts. Throws
   * `ERR_BUSY` at once (before anything is held) when the feed or the address is at its cap.
   */
  subscribe (signal: AbortSignal | undefined, address: string): AsyncGenerator<ChangeEvent> {
    const fromAddress = this.#perAddress.get(address) ?? 0
    if (fromAddress >= this.#limits.perAddress) {
      throw new CoordinatorError('ERR_BUSY', `${fromAddress} live streams are already open from your address (at most ${this.#limits.perAddress}); close some dashboard tabs`)
    }
    if (this.#total >= this.#limits.total) {
      throw new CoordinatorError('ERR_BUSY', `the coordinator already serves ${this.#total} live streams; the dashboard will update when you reload later`)
    }
    this.#total++
    this.#perAddress.set(address, fromAddress + 1)
    let held = true
    const release = (): void => {
      if (!held) return
      held = false
      this.#total--
      const left = (this.#perAddress.get(address) ?? 1) - 1
      if (left <= 0) this.#perAddress.delete(address)
      else this.#perAddress.set(address, left)
    }
    // The generator's `finally` runs only once it was started; the abort covers a stream never read.
    signal?.addEventListener('abort', release, { once: true })
    return this.#stream(signal, release)
  }

  async * #stream (signal: AbortSignal | undefined, release: () => void): AsyncGenerator<ChangeEvent> {
    try {
      for await (const [event] of on(this.#emitter, 'change', { signal })) {
        yield event as ChangeEvent
      }
    } finally {
      release()
    }
  }
}

import { EventEmitter, on } from 'node:events'
import { CoordinatorError } from '../errors.ts'
import { networkOf } from '../http/address-key.ts'

// The network key lives with the address keys it reads (the HTTP server's socket caps use it
// too); re-exported for the code that imported it from here.
export { networkOf }

/** What changed; the dashboard refetches the queries of that topic. */
export type ChangeTopic = 'nodes' | 'runs' | 'ledger' | 'pledges' | 'datasets'

export interface ChangeEvent { topic: ChangeTopic, runId?: string, at: string }

/** What a live stream sends: the topics (and runs) that changed since its last message. */
export interface ChangeBatch { topics: ChangeTopic[], runIds: string[], at: string }

/**
 * How many open streams the feed serves: all together, from one address (a person's tabs), and
 * from one network (an IPv6 /48, which one customer is often given: 256 of its /64s would
 * otherwise each be an address of their own).
 */
export interface ListenerLimits { total: number, perAddress: number, perNetwork: number }

export const DEFAULT_LISTENER_LIMITS: ListenerLimits = { total: 500, perAddress: 32, perNetwork: 64 }

/** The least time between two messages to the live streams. */
export const DEFAULT_BATCH_MS = 250

/**
 * An in-process feed of "something changed" events that tRPC subscriptions stream to the
 * dashboard over SSE. Events carry no data, only what to refetch, so a missed one costs a
 * stale view until the next event, never wrong data. Writing one message to every stream costs
 * the coordinator's thread tens of microseconds a stream, and strangers can cause events (a
 * peer connecting and leaving), so the streams get the changes merged: at most one message
 * every `batchMs`, naming each topic once (the first after a quiet spell goes out at once).
 * Each stream holds a socket and a listener, so streams are capped in total and per address.
 */
export class ChangeFeed {
  readonly #emitter = new EventEmitter({ captureRejections: false })
  readonly #limits: ListenerLimits
  readonly #perAddress = new Map<string, number>()
  readonly #perNetwork = new Map<string, number>()
  readonly #batchMs: number
  #total = 0
  #pendingTopics = new Set<ChangeTopic>()
  #pendingRuns = new Set<string>()
  #flush: NodeJS.Timeout | undefined
  /** performance.now() of the last message: a monotonic clock, so a clock step cannot stall the streams */
  #lastFlush = -Infinity

  constructor (limits: Partial<ListenerLimits> = {}, options: { batchMs?: number } = {}) {
    this.#limits = { ...DEFAULT_LISTENER_LIMITS, ...limits }
    this.#batchMs = options.batchMs ?? DEFAULT_BATCH_MS
    this.#emitter.setMaxListeners(0)
  }

  /** Announces a change: to the coordinator's own watchers now, to the live streams merged with others. */
  publish (topic: ChangeTopic, runId?: string): void {
    const event: ChangeEvent = { topic, at: new Date().toISOString(), ...(runId !== undefined ? { runId } : {}) }
    this.#emitter.emit('change', event)
    this.#pendingTopics.add(topic)
    if (runId !== undefined) this.#pendingRuns.add(runId)
    if (this.#flush !== undefined) return
    // Changes made in the same turn go out together; after that, one message per window.
    const wait = Math.max(0, this.#lastFlush + this.#batchMs - performance.now())
    this.#flush = setTimeout(() => { this.#send() }, wait)
    this.#flush.unref()
  }

  #send (): void {
    this.#flush = undefined
    this.#lastFlush = performance.now()
    const batch: ChangeBatch = { topics: [...this.#pendingTopics], runIds: [...this.#pendingRuns], at: new Date().toISOString() }
    this.#pendingTopics = new Set()
    this.#pendingRuns = new Set()
    this.#emitter.emit('batch', batch)
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
  subscribe (signal: AbortSignal | undefined, address: string): AsyncGenerator<ChangeBatch> {
    const fromAddress = this.#perAddress.get(address) ?? 0
    if (fromAddress >= this.#limits.perAddress) {
      throw new CoordinatorError('ERR_BUSY', `${fromAddress} live streams are already open from your address (at most ${this.#limits.perAddress}); close some dashboard tabs`)
    }
    const network = networkOf(address)
    const fromNetwork = this.#perNetwork.get(network) ?? 0
    if (fromNetwork >= this.#limits.perNetwork) {
      throw new CoordinatorError('ERR_BUSY', `${fromNetwork} live streams are already open from your network (at most ${this.#limits.perNetwork}); the dashboard will update when you reload later`)
    }
    if (this.#total >= this.#limits.total) {
      throw new CoordinatorError('ERR_BUSY', `the coordinator already serves ${this.#total} live streams; the dashboard will update when you reload later`)
    }
    this.#total++
    this.#perAddress.set(address, fromAddress + 1)
    this.#perNetwork.set(network, fromNetwork + 1)
    let held = true
    const release = (): void => {
      if (!held) return
      held = false
      this.#total--
      const left = (this.#perAddress.get(address) ?? 1) - 1
      if (left <= 0) this.#perAddress.delete(address)
      else this.#perAddress.set(address, left)
      const inNetwork = (this.#perNetwork.get(network) ?? 1) - 1
      if (inNetwork <= 0) this.#perNetwork.delete(network)
      else this.#perNetwork.set(network, inNetwork)
    }
    // The generator's `finally` runs only once it was started; the abort covers a stream never read.
    signal?.addEventListener('abort', release, { once: true })
    return this.#stream(signal, release)
  }

  async * #stream (signal: AbortSignal | undefined, release: () => void): AsyncGenerator<ChangeBatch> {
    try {
      for await (const [batch] of on(this.#emitter, 'batch', { signal })) {
        yield batch as ChangeBatch
      }
    } finally {
      release()
    }
  }
}

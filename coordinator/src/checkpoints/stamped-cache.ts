/**
 * A bounded map whose entries are valid only for the stamp they were stored with: a reader
 * that computes a cheap stamp (a row's version, a table's newest sequence number) gets the
 * value built for it, or nothing when the stamp moved on. Least recently used entries go first.
 */
export class StampedCache<V> {
  readonly #max: number
  readonly #entries = new Map<string, { stamp: string, value: V }>()

  constructor (max: number) {
    this.#max = max
  }

  /** The value stored for `key` under exactly `stamp`, or undefined. */
  get (key: string, stamp: string): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined || entry.stamp !== stamp) return undefined
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    return entry.value
  }

  /** Stores `value` for `key` under `stamp`, replacing any older one. */
  set (key: string, stamp: string, value: V): void {
    this.#entries.delete(key)
    this.#entries.set(key, { stamp, value })
    while (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!)
  }

  get size (): number {
    return this.#entries.size
  }
}

/** How much a StampedCache keeps. */
export interface StampedCacheLimits<V> {
  /** Most entries kept, builds in progress included. */
  entries: number
  /** Most bytes kept, as `sizeOf` counts them; a value bigger than this on its own is not kept. */
  bytes?: number
  /** What a value costs toward `bytes` (0 when not given). */
  sizeOf?: (value: V) => number
  /** Told of each stored value the cache lets go (evicted, replaced or deleted), e.g. to drop what was built from it. */
  onDrop?: (value: V) => void
}

type Entry<V> = { stamp: string, bytes: number } & ({ settled: true, value: V } | { settled: false, pending: Promise<V> })

/**
 * A bounded map whose entries are valid only for the stamp they were stored with: a reader
 * that computes a cheap stamp (a row's version, a table's newest sequence number) gets the
 * value built for it, or nothing when the stamp moved on. Least recently used entries go first,
 * past a count and, where sizes are given, a byte budget. `load` keeps a build in progress, so
 * concurrent readers of one stamp wait on one build; a build that fails is not kept.
 */
export class StampedCache<V> {
  readonly #limits: StampedCacheLimits<V>
  readonly #entries = new Map<string, Entry<V>>()
  #bytes = 0

  constructor (limits: number | StampedCacheLimits<V>) {
    this.#limits = typeof limits === 'number' ? { entries: limits } : limits
  }

  /** The value stored for `key` under exactly `stamp` (not one still being built), or undefined. */
  get (key: string, stamp: string): V | undefined {
    const entry = this.#entries.get(key)
    if (entry?.stamp !== stamp || !entry.settled) return undefined
    this.#touch(key, entry)
    return entry.value
  }

  /** Stores `value` for `key` under `stamp`, replacing any older one. */
  set (key: string, stamp: string, value: V): void {
    const bytes = this.#sizeOf(value)
    if (bytes > (this.#limits.bytes ?? Infinity)) { this.delete(key); return }
    this.#put(key, { stamp, bytes, settled: true, value })
    this.#trim()
  }

  /**
   * The value for `key` under `stamp`: the stored one, the one being built, or a new build.
   * `build` is given the value the entry held before (under an older stamp, or the build in
   * progress for one), so it can bring that up to date instead of starting over.
   */
  async load (key: string, stamp: string, build: (previous: Promise<V | undefined>) => Promise<V>): Promise<V> {
    const entry = this.#entries.get(key)
    if (entry?.stamp === stamp) {
      this.#touch(key, entry)
      return entry.settled ? entry.value : await entry.pending
    }
    const previous: Promise<V | undefined> = entry === undefined ? Promise.resolve(undefined) : entry.settled ? Promise.resolve(entry.value) : entry.pending.catch(() => undefined)
    const pending = (async () => await build(previous))()
    const mine: Entry<V> = { stamp, bytes: 0, settled: false, pending }
    this.#put(key, mine)
    this.#trim()
    // Registered before the caller awaits, so the value is stored by the time the caller resumes.
    pending.then((value) => {
      if (this.#entries.get(key) !== mine) return
      this.set(key, stamp, value)
    }, () => {
      if (this.#entries.get(key) === mine) this.#remove(key)
    })
    return await pending
  }

  /** Forgets `key`. */
  delete (key: string): void {
    if (this.#entries.has(key)) this.#remove(key)
  }

  /** Forgets every stored value `drop` picks. */
  deleteWhere (drop: (value: V) => boolean): void {
    for (const [key, entry] of [...this.#entries]) {
      if (entry.settled && drop(entry.value)) this.#remove(key)
    }
  }

  /** The stored values, least recently used first. */
  * values (): IterableIterator<V> {
    for (const entry of this.#entries.values()) if (entry.settled) yield entry.value
  }

  get size (): number {
    return this.#entries.size
  }

  /** What the stored values cost, as `sizeOf` counts them. */
  get bytes (): number {
    return this.#bytes
  }

  #sizeOf (value: V): number {
    return this.#limits.sizeOf?.(value) ?? 0
  }

  #touch (key: string, entry: Entry<V>): void {
    this.#entries.delete(key)
    this.#entries.set(key, entry)
  }

  #put (key: string, entry: Entry<V>): void {
    if (this.#entries.has(key)) this.#remove(key)
    this.#entries.set(key, entry)
    this.#bytes += entry.bytes
  }

  #remove (key: string): void {
    const entry = this.#entries.get(key)!
    this.#entries.delete(key)
    this.#bytes -= entry.bytes
    if (entry.settled) this.#limits.onDrop?.(entry.value)
  }

  #trim (): void {
    const maxBytes = this.#limits.bytes ?? Infinity
    while (this.#entries.size > this.#limits.entries || this.#bytes > maxBytes) this.#remove(this.#entries.keys().next().value!)
  }
}

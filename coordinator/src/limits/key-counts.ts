/** Counts per key (an address, a network), forgetting a key at zero so strangers' addresses do not pile up. */
export class KeyCounts {
  readonly #counts = new Map<string, number>()

  /** The count for `key` (0 when none is held). */
  get (key: string): number { return this.#counts.get(key) ?? 0 }

  /** One more for `key`. */
  add (key: string): void { this.#counts.set(key, this.get(key) + 1) }

  /** One fewer for `key`; at zero the key is forgotten. */
  remove (key: string): void {
    const left = this.get(key) - 1
    if (left <= 0) this.#counts.delete(key)
    else this.#counts.set(key, left)
  }
}

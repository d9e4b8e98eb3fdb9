/**
 * Keeps a blob's file from being deleted while someone is storing the same bytes. The store is
 * content-addressed and `put` skips bytes already on disk, so a report whose bytes equal a spent
 * one (a node may send the same delta again) and the sweep deleting the spent file could
 * interleave: the sweep sees no row yet, the new report's `put` finds the file and keeps it,
 * its row commits, and the sweep then unlinks the file under an accepted report. A writer pins
 * the bytes from before its `put` until its row has committed; a deleter skips pinned bytes,
 * and a writer that arrives mid-deletion waits for it and writes the file afresh.
 *
 * In-process only: one coordinator process owns a data directory (its lock file says so).
 */
export class BlobPins {
  readonly #pins = new Map<string, number>()
  readonly #deleting = new Map<string, Promise<unknown>>()

  /** Pins `sha256` until the returned release is called (after the row naming it has committed or been rolled back). */
  async pin (sha256: string): Promise<() => void> {
    // Counted before any await, so a deletion that starts from here on sees it.
    this.#pins.set(sha256, (this.#pins.get(sha256) ?? 0) + 1)
    let held = true
    const release = (): void => {
      if (!held) return
      held = false
      const left = (this.#pins.get(sha256) ?? 1) - 1
      if (left <= 0) this.#pins.delete(sha256)
      else this.#pins.set(sha256, left)
    }
    const deleting = this.#deleting.get(sha256)
    if (deleting !== undefined) await deleting.catch(() => undefined)
    return release
  }

  /** Whether `sha256` is pinned now. */
  pinned (sha256: string): boolean {
    return this.#pins.has(sha256)
  }

  /**
   * Removes (rows and files, as `remove` does) those of `shas` not pinned, not already being
   * deleted, and not among those `stillUsed` names. `stillUsed` is asked once, after the
   * deletions are marked, so a writer that pins one meanwhile waits for its deletion and then
   * writes it afresh. Resolves the shas removed.
   */
  async deleteUnlessPinned (shas: readonly string[], stillUsed: (shas: string[]) => Promise<Set<string>>, remove: (shas: string[]) => Promise<void>): Promise<string[]> {
    const mine = [...new Set(shas)].filter((sha) => !this.#pins.has(sha) && !this.#deleting.has(sha))
    if (mine.length === 0) return []
    const run = (async () => {
      const used = await stillUsed(mine)
      const deleted = mine.filter((sha) => !used.has(sha) && !this.#pins.has(sha))
      if (deleted.length > 0) await remove(deleted)
      return deleted
    })()
    for (const sha of mine) this.#deleting.set(sha, run)
    try {
      return await run
    } finally {
      for (const sha of mine) this.#deleting.delete(sha)
    }
  }
}

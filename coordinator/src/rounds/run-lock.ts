/**
 * One async mutex per run. Accepting a report (commit, then fold into the running sum) and
 * closing a round (read the sum, commit the new checkpoint) must not interleave, or an
 * accepted contribution could miss the checkpoint it was counted in.
 */
export class RunLocks {
  readonly #tails = new Map<string, Promise<void>>()

  /** Runs `fn` once every earlier holder of `runId`'s lock has finished. */
  async with<T> (runId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(runId) ?? Promise.resolve()
    let release!: () => void
    const tail = new Promise<void>((resolve) => { release = resolve })
    this.#tails.set(runId, tail)
    await previous
    try {
      return await fn()
    } finally {
      release()
      if (this.#tails.get(runId) === tail) this.#tails.delete(runId)
    }
  }
}

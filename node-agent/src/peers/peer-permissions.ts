// Whether a peer may have a blob, by the coordinator's word (`swarm-member`), remembered for a
// minute: a peer asks for a blob block by block, and the coordinator need not be asked each
// time. A blob's sha256 is public (run specs list their shards), so a holder serves only peers
// the coordinator vouches for, as the coordinator itself would serve them.

/** How long the coordinator's answer is trusted: about a round, so a revoked node soon loses it. */
const REMEMBER_MS = 60_000
/** Answers kept at once; the oldest go first. */
const MAX_ANSWERS = 4096

/** The coordinator's answers about which peers may have which blobs. */
export class PeerPermissions {
  readonly #ask: (sha256: string, peerId: string) => Promise<boolean>
  readonly #now: () => number
  readonly #answers = new Map<string, { allowed: Promise<boolean>, at: number }>()

  /** `ask` puts the question to the coordinator; it may throw (then the peer is refused this once). */
  constructor (ask: (sha256: string, peerId: string) => Promise<boolean>, now: () => number = Date.now) {
    this.#ask = ask
    this.#now = now
  }

  /** Whether `peerId` may have blob `sha256`; false when the coordinator could not be asked. */
  async allows (sha256: string, peerId: string): Promise<boolean> {
    const key = `${sha256}/${peerId}`
    const known = this.#answers.get(key)
    if (known !== undefined && this.#now() - known.at < REMEMBER_MS) return await known.allowed
    if (known !== undefined) this.#answers.delete(key)
    // One question for peers asking at once; an error is not remembered.
    const allowed = this.#ask(sha256, peerId).catch(() => {
      this.#answers.delete(key)
      return false
    })
    this.#answers.set(key, { allowed, at: this.#now() })
    if (this.#answers.size > MAX_ANSWERS) this.#answers.delete(this.#answers.keys().next().value!)
    return await allowed
  }
}

import { randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * The one-time code that makes the first admin through the web. A coordinator with no admin
 * prints it at start; it lives in memory only and is spent by the sign-up that uses it.
 */
export class SetupCode {
  #code: string | null = null

  /** Issues a fresh code (replacing any earlier one) and returns it for printing. */
  issue (): string {
    this.#code = randomBytes(12).toString('base64url')
    return this.#code
  }

  /** True while a code is outstanding. */
  get pending (): boolean { return this.#code !== null }

  /** Whether `candidate` is the outstanding code, compared in constant time; spends nothing. */
  matches (candidate: string): boolean {
    if (this.#code === null) return false
    const a = Buffer.from(candidate)
    const b = Buffer.from(this.#code)
    return a.length === b.length && timingSafeEqual(a, b)
  }

  /** Spends the code if `candidate` matches it; a wrong guess leaves it in place. */
  spend (candidate: string): boolean {
    if (!this.matches(candidate)) return false
    this.#code = null
    return true
  }
}

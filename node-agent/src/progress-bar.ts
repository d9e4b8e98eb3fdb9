/**
 * A one-line progress display: redrawn in place on a terminal and wiped when done (the
 * round's summary line takes its place); in logs, printed every `every` steps only when
 * verbose, since a log wants one line per round.
 */
export class ProgressBar {
  readonly #out: NodeJS.WriteStream
  readonly #label: string
  readonly #every: number
  #lastLength = 0

  readonly #verbose: boolean

  constructor (out: NodeJS.WriteStream, label: string, options: { every?: number, verbose?: boolean } = {}) {
    this.#out = out
    this.#label = label
    this.#every = options.every ?? 5
    this.#verbose = options.verbose ?? false
  }

  /** Shows step `step` of `steps` with its loss and throughput. */
  update (step: number, steps: number, loss: number, tokensPerSecond: number): void {
    const width = 24
    const filled = Math.round(width * step / steps)
    const text = `${this.#label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] step ${step}/${steps} loss ${loss.toFixed(4)} ${Math.round(tokensPerSecond).toLocaleString('en-US')} tok/s`
    if (this.#out.isTTY === true) {
      this.#out.write(`\r${text}${' '.repeat(Math.max(0, this.#lastLength - text.length))}`)
      this.#lastLength = text.length
      if (step === steps) { this.#out.write(this.#verbose ? '\n' : `\r${' '.repeat(this.#lastLength)}\r`); this.#lastLength = 0 }
    } else if (this.#verbose && (step === steps || step % this.#every === 0 || step === 1)) {
      this.#out.write(text + '\n')
    }
  }
}

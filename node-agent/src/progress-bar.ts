/**
 * A one-line progress display: redrawn in place on a terminal, printed every `every` steps
 * otherwise (logs and tests read whole lines).
 */
export class ProgressBar {
  readonly #out: NodeJS.WriteStream
  readonly #label: string
  readonly #every: number
  #lastLength = 0

  constructor (out: NodeJS.WriteStream, label: string, every = 5) {
    this.#out = out
    this.#label = label
    this.#every = every
  }

  /** Shows step `step` of `steps` with its loss and throughput. */
  update (step: number, steps: number, loss: number, tokensPerSecond: number): void {
    const width = 24
    const filled = Math.round(width * step / steps)
    const text = `${this.#label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] step ${step}/${steps} loss ${loss.toFixed(4)} ${Math.round(tokensPerSecond).toLocaleString('en-US')} tok/s`
    if (this.#out.isTTY === true) {
      this.#out.write(`\r${text}${' '.repeat(Math.max(0, this.#lastLength - text.length))}`)
      this.#lastLength = text.length
      if (step === steps) { this.#out.write('\n'); this.#lastLength = 0 }
    } else if (step === steps || step % this.#every === 0 || step === 1) {
      this.#out.write(text + '\n')
    }
  }
}

import { createFoldTarget, decodePseudoGradient, encodedByteLength, foldPseudoGradient, isFoldTarget } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import { aggregate } from '@barnraise/trainer'
import { CLOSE_SLICE, SLICEABLE_CODECS } from './close-in-slices.ts'
import type { AggregationOptions, AggregationRule, Contribution } from '@barnraise/trainer'

/** Values a page of memory holds (4 KiB of float32). */
const PAGE_VALUES = 1024
/** Values mapped in per turn of the event loop: 16 MiB, about 10 ms of page faults here. */
const PREFAULT_SLICE = 4 * 1024 * 1024

/**
 * One open round's accepted pseudo-gradients: their running token-weighted sum (one model's
 * worth of memory, however many reports arrive) and, when the run's rule needs them whole
 * (a trimmed mean, a median, clipping), the reports themselves until the round closes.
 */
export class RoundAccumulator {
  readonly roundId: string
  readonly sum: Float32Array
  tokens = 0
  reports = 0
  /** Each report's claimed last inner-loop loss (finite ones) with its tokens. */
  readonly #losses: Array<{ loss: number, tokens: number }> = []
  readonly #kept: Contribution[] | null
  /** Set once the close took the update (takeUpdateInSlices): the sum holds the mean from then on. */
  #spent = false

  /** Whether the close took the update (nothing more folds in). */
  get spent (): boolean { return this.#spent }

  /** Values folded between turns of the event loop where a fold runs in JavaScript. */
  readonly #slice: number

  /**
   * `options.sum`: zeros of `paramCount` values to sum in instead of a new buffer (a spent round's
   * sum: RunCache, zeroed with `zeroInSlices`); it keeps being a fold target if it was one.
   */
  constructor (roundId: string, paramCount: number, keepReports = false, options: { foldTarget?: boolean, slice?: number, sum?: Float32Array } = {}) {
    this.roundId = roundId
    if (options.sum !== undefined && options.sum.length !== paramCount) throw new Error(`a round's sum holds the model's ${paramCount} values, not ${options.sum.length}`)
    // In WebAssembly memory where it fits, so int8 reports fold with SIMD without copying it.
    this.sum = options.sum ?? (options.foldTarget === false ? new Float32Array(paramCount) : createFoldTarget(paramCount))
    this.#slice = options.slice ?? CLOSE_SLICE
    this.#kept = keepReports ? [] : null
  }

  /**
   * Maps the sum's memory in a slice at a time, the event loop let through between slices, so
   * the round's first report does not fold through a model's worth of page faults in one turn
   * (0.14 s at 32M values here, against 13 ms for a fold into mapped memory). Each touched value
   * is written back as read within one turn, so a fold in between loses nothing.
   */
  async prefault (): Promise<void> {
    const sum = this.sum
    for (let start = 0; start < sum.length; start += PREFAULT_SLICE) {
      const end = Math.min(start + PREFAULT_SLICE, sum.length)
      for (let i = start; i < end; i += PAGE_VALUES) sum[i] = sum[i]!
      if (end < sum.length) await new Promise((resolve) => setImmediate(resolve))
    }
  }

  /** Adds `tokens × delta` to the sum (and keeps the delta when the rule needs it whole). */
  fold (delta: Float32Array, tokens: number, finalLoss: number | undefined): void {
    this.#assertUnspent()
    const sum = this.sum
    // Float32 arithmetic, as foldPseudoGradient's: the same sum whichever path a report takes.
    const w = Math.fround(tokens)
    for (let i = 0; i < sum.length; i++) sum[i]! += Math.fround(w * delta[i]!)
    this.#kept?.push({ delta, tokens })
    this.tokens += tokens
    this.reports++
    this.#claimLoss(finalLoss, tokens)
  }

  /**
   * Folds a report from its payload: chunk by chunk, with no decoded copy, unless the rule
   * keeps reports whole. The payload must have been checked (scanPseudoGradient).
   */
  foldEncoded (codec: CodecName, payload: Uint8Array, tokens: number, finalLoss: number | undefined): void {
    if (this.#kept !== null) { this.fold(decodePseudoGradient(codec, payload, this.sum.length), tokens, finalLoss); return }
    this.#assertUnspent()
    foldPseudoGradient(codec, payload, this.sum.length, tokens, this.sum)
    this.tokens += tokens
    this.reports++
    this.#claimLoss(finalLoss, tokens)
  }

  /**
   * `foldEncoded`, a slice at a time where the fold runs in JavaScript (fp16 and fp32 always;
   * int8 past 512M values, where the sum does not fit the SIMD kernel's memory: a 1B model's
   * int8 report took one turn of about 2.5 s). int8 into a fold target folds in one call (0.4 ns
   * a value). The same floats either way: each value's fold is its own.
   */
  async foldEncodedInSlices (codec: CodecName, payload: Uint8Array, tokens: number, finalLoss: number | undefined): Promise<void> {
    this.#assertUnspent()
    const n = this.sum.length
    if (this.#kept !== null || (codec === 'int8' && isFoldTarget(this.sum)) || !SLICEABLE_CODECS.has(codec) || n <= this.#slice) {
      this.foldEncoded(codec, payload, tokens, finalLoss)
      return
    }
    for (let from = 0; from < n; from += this.#slice) {
      const to = Math.min(from + this.#slice, n)
      foldPseudoGradient(codec, payload.subarray(encodedByteLength(codec, from), encodedByteLength(codec, to)), to - from, tokens, this.sum.subarray(from, to))
      if (to < n) await new Promise((resolve) => setImmediate(resolve))
    }
    this.tokens += tokens
    this.reports++
    this.#claimLoss(finalLoss, tokens)
  }

  /** The round's update under `rule`: the running mean for a plain mean, else the rule over the kept reports. */
  update (rule: AggregationRule, options: AggregationOptions = {}): Float32Array {
    this.#assertUnspent()
    if (this.#kept === null) {
      if (rule.rule !== 'mean' || options.clipToMedianNorm !== undefined) throw new Error(`the ${rule.rule} rule needs the round's reports whole, and this accumulator did not keep them`)
      return this.mean()
    }
    return this.#kept.length === 0 ? this.mean() : aggregate(this.#kept, rule, options).update
  }

  /**
   * The round's update for its close, which spends the accumulator: a plain mean is worked out
   * a slice at a time between turns of the event loop (close-in-slices.ts) in the sum's own
   * memory (a model-sized buffer fewer than `update`), and a rule over kept reports lets them go
   * once it has its update. Later folds, means and updates throw: the sum is gone.
   */
  async takeUpdateInSlices (rule: AggregationRule, options: AggregationOptions = {}): Promise<Float32Array> {
    this.#assertUnspent()
    if (this.#kept !== null || rule.rule !== 'mean' || options.clipToMedianNorm !== undefined) {
      const update = this.update(rule, options)
      this.#spent = true
      if (this.#kept !== null) this.#kept.length = 0
      return update
    }
    this.#spent = true
    const sum = this.sum
    // Never a report yet: the update is nothing (a sum untouched holds zeros).
    if (this.tokens === 0) return sum.fill(0)
    const inv = 1 / this.tokens
    for (let from = 0; from < sum.length; from += CLOSE_SLICE) {
      const to = Math.min(from + CLOSE_SLICE, sum.length)
      // The values `mean` gives: each float32 sum times the same double, rounded once.
      for (let i = from; i < to; i++) sum[i] = sum[i]! * inv
      if (to < sum.length) await new Promise((resolve) => setImmediate(resolve))
    }
    return sum
  }

  #assertUnspent (): void {
    if (this.#spent) throw new Error(`round ${this.roundId}'s sum was spent on its close; nothing more folds into it`)
  }

  /** The token-weighted mean pseudo-gradient. */
  mean (): Float32Array {
    this.#assertUnspent()
    const out = new Float32Array(this.sum.length)
    if (this.tokens === 0) return out
    const inv = 1 / this.tokens
    for (let i = 0; i < out.length; i++) out[i] = this.sum[i]! * inv
    return out
  }

  #claimLoss (finalLoss: number | undefined, tokens: number): void {
    if (finalLoss !== undefined && Number.isFinite(finalLoss)) this.#losses.push({ loss: finalLoss, tokens })
  }

  /**
   * The round's training loss: the token-weighted median of the nodes' last inner-loop losses,
   * null when none claimed one. Each is a node's unchecked claim, so a median: nodes holding
   * under half the round's tokens cannot move it outside the others' (a mean took one claim of
   * 1e308 to Infinity, and two of opposite sign to NaN).
   */
  trainLoss (): number | null {
    if (this.#losses.length === 0) return null
    const sorted = [...this.#losses].sort((a, b) => a.loss - b.loss)
    const total = sorted.reduce((t, c) => t + c.tokens, 0)
    let below = 0
    for (const [i, c] of sorted.entries()) {
      below += c.tokens
      // Exactly half the tokens at or below this loss: the midpoint with the next, as a median of an even count.
      if (below === total / 2 && i + 1 < sorted.length) return (c.loss + sorted[i + 1]!.loss) / 2
      if (below > total / 2) return c.loss
    }
    return sorted.at(-1)!.loss
  }
}

/** Sets `values` to zeros a slice at a time, the event loop let through between slices (a 1B model's 4 GB is about 0.5 s of writes). */
export async function zeroInSlices (values: Float32Array, slice = CLOSE_SLICE): Promise<void> {
  for (let from = 0; from < values.length; from += slice) {
    const to = Math.min(from + slice, values.length)
    values.fill(0, from, to)
    if (to < values.length) await new Promise((resolve) => setImmediate(resolve))
  }
}

/** L2 norm in float64. */
export function l2Norm (values: Float32Array): number {
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!
  return Math.sqrt(s)
}

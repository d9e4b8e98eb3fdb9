/**
 * The running token-weighted sum of one open round's accepted pseudo-gradients. Memory is
 * one model's worth, however many reports arrive.
 */
export class RoundAccumulator {
  readonly roundId: string
  readonly sum: Float32Array
  tokens = 0
  reports = 0
  #lossWeighted = 0

  constructor (roundId: string, paramCount: number) {
    this.roundId = roundId
    this.sum = new Float32Array(paramCount)
  }

  /** Adds `tokens × delta` to the sum. */
  fold (delta: Float32Array, tokens: number, finalLoss: number | undefined): void {
    const sum = this.sum
    for (let i = 0; i < sum.length; i++) sum[i]! += tokens * delta[i]!
    this.tokens += tokens
    this.reports++
    if (finalLoss !== undefined && Number.isFinite(finalLoss)) this.#lossWeighted += tokens * finalLoss
  }

  /** The token-weighted mean pseudo-gradient. */
  mean (): Float32Array {
    const out = new Float32Array(this.sum.length)
    if (this.tokens === 0) return out
    const inv = 1 / this.tokens
    for (let i = 0; i < out.length; i++) out[i] = this.sum[i]! * inv
    return out
  }

  /** Token-weighted mean of the nodes' last inner-loop losses. */
  trainLoss (): number | null {
    return this.tokens === 0 ? null : this.#lossWeighted / this.tokens
  }
}

/** L2 norm in float64. */
export function l2Norm (values: Float32Array): number {
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!
  return Math.sqrt(s)
}

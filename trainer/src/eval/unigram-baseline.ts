import { validationWindowStarts } from './validation-loss.ts'
import type { ValidationOptions } from './validation-loss.ts'

/** Adds each token's occurrences in `tokens` to `counts` (index = token id). */
export function addTokenCounts (counts: Float64Array, tokens: ArrayLike<number>): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!
    if (t < 0 || t >= counts.length || !Number.isInteger(t)) throw new RangeError(`token ${t} is outside the vocabulary of ${counts.length}`)
    counts[t]! += 1
  }
}

/**
 * The loss of the best model that ignores context: token frequencies counted on the training
 * data (add-one smoothed over the vocabulary, so a token the training data never shows costs
 * log(N + V) instead of infinity), scored in nats/token on exactly the tokens
 * `validationLoss` predicts — the same windows — so the two numbers share one axis. A
 * trained model whose validation loss is not below this has learnt nothing about context.
 */
export function unigramBaselineLoss (trainCounts: Float64Array, validation: ArrayLike<number>, opts: ValidationOptions): number {
  const vocab = trainCounts.length
  let total = 0
  for (let t = 0; t < vocab; t++) total += trainCounts[t]!
  const denominator = total + vocab
  let nats = 0
  let predicted = 0
  for (const start of validationWindowStarts(validation.length, opts)) {
    // validationLoss predicts tokens 1…seqLen of each window from the ones before them.
    for (let i = start + 1; i <= start + opts.seqLen; i++) {
      const token = validation[i]!
      const count = token >= 0 && token < vocab ? trainCounts[token]! : 0
      nats -= Math.log((count + 1) / denominator)
      predicted++
    }
  }
  return nats / predicted
}

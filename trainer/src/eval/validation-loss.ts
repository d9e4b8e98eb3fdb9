import type { ParamSet } from '../model/params.ts'
import { evaluateLoss } from '../model/llama.ts'

export interface ValidationOptions { batches: number, batchSize: number, seqLen: number }

/**
 * Mean next-token loss over `batches × batchSize` windows spread evenly across held-out
 * tokens. The windows depend only on the token count and the options, so anyone holding the
 * checkpoint and the validation shard gets the same number the coordinator reported.
 */
export function validationLoss (params: ParamSet, tokens: ArrayLike<number>, opts: ValidationOptions): number {
  const window = opts.seqLen + 1
  const starts = validationWindowStarts(tokens.length, opts)
  let total = 0
  for (let b = 0; b < opts.batches; b++) {
    const ids = new Int32Array(opts.batchSize * window)
    for (let i = 0; i < opts.batchSize; i++) {
      const start = starts[b * opts.batchSize + i]!
      for (let t = 0; t < window; t++) ids[i * window + t] = tokens[start + t]!
    }
    total += evaluateLoss(params, ids, opts.batchSize, opts.seqLen)
  }
  return total / opts.batches
}

/**
 * Where each of the `batches × batchSize` windows of `seqLen + 1` tokens starts: spread evenly
 * from the first token to the last window that fits. Shared with the unigram baseline, so both
 * numbers are measured on the same predicted tokens.
 */
export function validationWindowStarts (length: number, opts: ValidationOptions): number[] {
  const window = opts.seqLen + 1
  const count = opts.batches * opts.batchSize
  if (length < window) throw new Error(`validation data has ${length} tokens; one window needs ${window}`)
  const span = length - window
  return Array.from({ length: count }, (_, w) => count === 1 ? 0 : Math.floor(w * span / (count - 1)))
}

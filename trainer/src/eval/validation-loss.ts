import type { ParamSet } from '../model/params.ts'
import { evaluateLoss } from '../model/llama.ts'

export interface ValidationOptions { batches: number, batchSize: number, seqLen: number }

/**
 * Mean next-token loss over `batches × batchSize` windows spread evenly across held-out
 * tokens. The windows depend only on the token count and the options, so anyone holding the
 * checkpoint and the validation shard gets the same number the coordinator reported.
 */
export function validationLoss (params: ParamSet, tokens: ArrayLike<number>, opts: ValidationOptions): number {
  return lossOverBatches(params, validationBatches(tokens, opts), opts)
}

/** The token ids of `validationLoss`'s batches, `batchSize × (seqLen + 1)` each: all a measurement needs of the held-out tokens. */
export function validationBatches (tokens: ArrayLike<number>, opts: ValidationOptions): Int32Array[] {
  const window = opts.seqLen + 1
  const starts = validationWindowStarts(tokens.length, opts)
  return Array.from({ length: opts.batches }, (_, b) => {
    const ids = new Int32Array(opts.batchSize * window)
    for (let i = 0; i < opts.batchSize; i++) {
      const start = starts[b * opts.batchSize + i]!
      for (let t = 0; t < window; t++) ids[i * window + t] = tokens[start + t]!
    }
    return ids
  })
}

/** The mean of each batch's next-token loss (`validationLoss` over batches already cut). */
export function lossOverBatches (params: ParamSet, batches: readonly Int32Array[], opts: Pick<ValidationOptions, 'batchSize' | 'seqLen'>): number {
  let total = 0
  for (const ids of batches) total += evaluateLoss(params, ids, opts.batchSize, opts.seqLen)
  return total / batches.length
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

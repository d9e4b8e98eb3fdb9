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
  const count = opts.batches * opts.batchSize
  if (tokens.length < window) throw new Error(`validation data has ${tokens.length} tokens; one window needs ${window}`)
  const span = tokens.length - window
  let total = 0
  for (let b = 0; b < opts.batches; b++) {
    const ids = new Int32Array(opts.batchSize * window)
    for (let i = 0; i < opts.batchSize; i++) {
      const w = b * opts.batchSize + i
      const start = count === 1 ? 0 : Math.floor(w * span / (count - 1))
      for (let t = 0; t < window; t++) ids[i * window + t] = tokens[start + t]!
    }
    total += evaluateLoss(params, ids, opts.batchSize, opts.seqLen)
  }
  return total / opts.batches
}

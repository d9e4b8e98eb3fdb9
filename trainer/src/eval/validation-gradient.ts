import type { ParamSet } from '../model/params.ts'
import { createParamSet } from '../model/params.ts'
import { lossAndGrad } from '../model/llama.ts'
import type { ValidationOptions } from './validation-loss.ts'
import { validationWindowStarts } from './validation-loss.ts'

/**
 * The mean gradient of the next-token loss over the same held-out windows `validationLoss`
 * reads. Report screening uses its direction as the way downhill before any round has shown it:
 * an honest pseudo-gradient (θ − θ_local) points along it, a sign-flipped one against it.
 */
export function validationGradient (params: ParamSet, tokens: ArrayLike<number>, opts: ValidationOptions): Float32Array {
  const window = opts.seqLen + 1
  const starts = validationWindowStarts(tokens.length, opts)
  const grads = createParamSet(params.config)
  const mean = new Float32Array(grads.flat.length)
  for (let b = 0; b < opts.batches; b++) {
    const ids = new Int32Array(opts.batchSize * window)
    for (let i = 0; i < opts.batchSize; i++) {
      const start = starts[b * opts.batchSize + i]!
      for (let t = 0; t < window; t++) ids[i * window + t] = tokens[start + t]!
    }
    lossAndGrad(params, ids, opts.batchSize, opts.seqLen, grads)
    for (let i = 0; i < mean.length; i++) mean[i]! += grads.flat[i]! / opts.batches
  }
  return mean
}

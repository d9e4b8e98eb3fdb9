// A run's initial weights as one stream of values, written a range at a time: the round-0
// checkpoint is made from it on a worker thread and sent a slice at a time, so neither side ever
// holds the model whole. The values are initParams's, drawn in the same order from the same
// generator (initial-weights.test.ts holds them equal): agents make this checkpoint from the seed
// and use it only if its sha256 is the coordinator's.
import type { LlamaConfig } from '@barnraise/protocol'
import { ModelError } from '../model/model-error.ts'
import { INIT_STD, paramSpecs, shapeSize } from '../model/params.ts'
import { normalGenerator } from '../model/random.ts'

/** Throws ERR_BAD_PARAMS, as initParams does, for a seed that is not a safe integer. */
export function assertInitSeed (seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new ModelError('ERR_BAD_PARAMS', `seed ${seed} must be an integer`)
}

/** Writes successive ranges of the initial weights; `total` values in all. */
export interface InitialWeightWriter {
  total: number
  /** Fills `out` with the next `out.length` values; throws ERR_BAD_PARAMS when fewer remain. */
  write: (out: Float32Array) => void
}

/**
 * initParams(config, seed).flat's values in order (every tensor in paramSpecs order; matrices
 * N(0, 0.02²), norm gains 1), any number at a time: a range may end inside a tensor or span
 * several, and the values come out the same however the ranges fall.
 */
export function initialWeightWriter (config: LlamaConfig, seed: number): InitialWeightWriter {
  assertInitSeed(seed)
  const tensors = paramSpecs(config).map((s) => ({ size: shapeSize(s.shape), gain: s.shape.length === 1 }))
  const total = tensors.reduce((n, t) => n + t.size, 0)
  const normal = normalGenerator(seed)
  let tensor = 0
  let inTensor = 0
  let written = 0
  return {
    total,
    write: (out) => {
      if (out.length > total - written) throw new ModelError('ERR_BAD_PARAMS', `asked for ${out.length} initial weights but ${total - written} of ${total} remain`)
      let i = 0
      while (i < out.length) {
        const t = tensors[tensor]!
        const n = Math.min(out.length - i, t.size - inTensor)
        if (t.gain) out.fill(1, i, i + n)
        else for (let k = i; k < i + n; k++) out[k] = normal() * INIT_STD
        i += n
        inTensor += n
        if (inTensor === t.size) { tensor++; inTensor = 0 }
      }
      written += out.length
    }
  }
}

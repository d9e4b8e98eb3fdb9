// AdamW exactly as torch.optim.AdamW (amsgrad=False, maximize=False): decoupled weight decay
// applied to the parameter first, then bias-corrected Adam. The inner optimizer of DiLoCo.
import { OptimizerError, requireOption, requireSize } from './optimizer-error.ts'

export interface AdamWOptions {
  lr: number
  beta1?: number
  beta2?: number
  eps?: number
  weightDecay?: number
}

/** Everything needed to resume AdamW where it stopped. */
export interface AdamWState { step: number, m: Float32Array, v: Float32Array }

/** AdamW over one flat parameter vector. */
export class AdamW {
  readonly size: number
  readonly lr: number
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  readonly weightDecay: number
  private m: Float32Array
  private v: Float32Array
  private steps = 0

  constructor (size: number, opts: AdamWOptions) {
    if (!Number.isSafeInteger(size) || size < 0) throw new OptimizerError('ERR_BAD_OPTION', `size ${size} must be a non-negative integer`)
    this.size = size
    this.lr = opts.lr
    this.beta1 = opts.beta1 ?? 0.9
    this.beta2 = opts.beta2 ?? 0.999
    this.eps = opts.eps ?? 1e-8
    this.weightDecay = opts.weightDecay ?? 0.01
    requireOption('lr', this.lr, 0, Infinity)
    requireOption('beta1', this.beta1, 0, 1 - Number.EPSILON)
    requireOption('beta2', this.beta2, 0, 1 - Number.EPSILON)
    requireOption('eps', this.eps, 0, Infinity)
    requireOption('weightDecay', this.weightDecay, 0, Infinity)
    this.m = new Float32Array(size)
    this.v = new Float32Array(size)
  }

  /** Optimizer steps taken so far (torch's `state['step']`). */
  get stepCount (): number { return this.steps }

  /** One update of `params` in place from `grads`; `lr` overrides the constructor's (for schedules). */
  step (params: Float32Array, grads: Float32Array, lr: number = this.lr): void {
    requireSize('params', params, this.size)
    requireSize('grads', grads, this.size)
    requireOption('lr', lr, 0, Infinity)
    this.steps++
    const { beta1, beta2, eps, m, v } = this
    const decay = 1 - lr * this.weightDecay
    const stepSize = lr / (1 - beta1 ** this.steps)
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.steps)
    for (let i = 0; i < params.length; i++) {
      const g = grads[i]
      const mi = beta1 * m[i] + (1 - beta1) * g
      const vi = beta2 * v[i] + (1 - beta2) * g * g
      m[i] = mi
      v[i] = vi
      params[i] = params[i] * decay - stepSize * mi / (Math.sqrt(vi) / bc2Sqrt + eps)
    }
  }

  /** A copy of the moments and step count, for persistence. */
  exportState (): AdamWState {
    return { step: this.steps, m: this.m.slice(), v: this.v.slice() }
  }

  /** Resumes from exported state; refuses state of another size. */
  importState (state: AdamWState): void {
    if (!Number.isSafeInteger(state.step) || state.step < 0) throw new OptimizerError('ERR_BAD_STATE', `AdamW state step ${state.step} must be a non-negative integer`)
    requireSize('AdamW state m', state.m, this.size)
    requireSize('AdamW state v', state.v, this.size)
    this.steps = state.step
    this.m = state.m.slice()
    this.v = state.v.slice()
  }
}

// The DiLoCo outer optimizer: torch.optim.SGD(nesterov=True, dampening=0, weight_decay=0).
// buffer b = g on the first step, then b = momentum·b + g; update = g + momentum·b; p -= lr·update.
// Fed pseudo-gradients Δ = θ_base − θ_after_local_training.
import { OptimizerError, requireOption, requireSize } from './optimizer-error.ts'

export interface NesterovOptions { lr?: number, momentum?: number }

/** Everything needed to resume the outer optimizer; `buffer` is null before the first step. */
export interface NesterovState { step: number, buffer: Float32Array | null }

/** SGD with Nesterov momentum over one flat parameter vector. */
export class NesterovSGD {
  readonly size: number
  readonly lr: number
  readonly momentum: number
  private buffer: Float32Array | null = null
  private steps = 0

  constructor (size: number, opts: NesterovOptions = {}) {
    if (!Number.isSafeInteger(size) || size < 0) throw new OptimizerError('ERR_BAD_OPTION', `size ${size} must be a non-negative integer`)
    this.size = size
    this.lr = opts.lr ?? 0.7
    this.momentum = opts.momentum ?? 0.9
    requireOption('lr', this.lr, 0, Infinity)
    requireOption('momentum', this.momentum, 0, 1)
  }

  /** Steps taken so far. */
  get stepCount (): number { return this.steps }

  /** One outer update of `params` in place from the (averaged) pseudo-gradient. */
  step (params: Float32Array, pseudoGrads: Float32Array, lr: number = this.lr): void {
    requireSize('params', params, this.size)
    requireSize('pseudo-gradient', pseudoGrads, this.size)
    requireOption('lr', lr, 0, Infinity)
    const mu = this.momentum
    if (this.buffer === null) {
      this.buffer = pseudoGrads.slice()
      for (let i = 0; i < params.length; i++) params[i] -= lr * (pseudoGrads[i] + mu * pseudoGrads[i])
    } else {
      const b = this.buffer
      for (let i = 0; i < params.length; i++) {
        const g = pseudoGrads[i]
        const bi = mu * b[i] + g
        b[i] = bi
        params[i] -= lr * (g + mu * bi)
      }
    }
    this.steps++
  }

  /** A copy of the momentum buffer and step count, for persistence. */
  exportState (): NesterovState {
    return { step: this.steps, buffer: this.buffer === null ? null : this.buffer.slice() }
  }

  /** Resumes from exported state; refuses state of another size. */
  importState (state: NesterovState): void {
    if (!Number.isSafeInteger(state.step) || state.step < 0) throw new OptimizerError('ERR_BAD_STATE', `Nesterov state step ${state.step} must be a non-negative integer`)
    if (state.buffer !== null) requireSize('Nesterov momentum buffer', state.buffer, this.size)
    if ((state.buffer === null) !== (state.step === 0)) throw new OptimizerError('ERR_BAD_STATE', 'Nesterov state must have a momentum buffer exactly when step > 0')
    this.steps = state.step
    this.buffer = state.buffer === null ? null : state.buffer.slice()
  }
}

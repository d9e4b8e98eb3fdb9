// The DiLoCo inner loop: H steps of (batch → loss and gradient → clip by global norm → AdamW)
// on one node. The learning-rate schedule is indexed by the run's global inner step — given by
// the coordinator as `scheduleOffset`, or else the optimizer's own step count — so a node
// continues the warmup/cosine curve across rounds instead of restarting warmup every round.
import { lossAndGrad } from '../model/llama.ts'
import { createParamSet } from '../model/params.ts'
import type { ParamSet } from '../model/params.ts'
import type { AdamW } from '../optim/adamw.ts'
import { clipGradNorm } from '../optim/clip.ts'
import { learningRateAt } from '../optim/schedule.ts'
import type { ScheduleOptions } from '../optim/schedule.ts'
import type { GradientPool } from './gradient-pool.ts'

export interface LocalTrainingProgress {
  /** 1-based inner step just finished */
  step: number
  steps: number
  loss: number
  /** training tokens per second since the loop started */
  tokensPerSecond: number
  lr: number
  /** global gradient norm before clipping */
  gradNorm: number
}

export interface LocalTrainingOptions {
  /** weights, updated in place */
  params: ParamSet
  /** the inner optimizer; its step count indexes the schedule */
  optimizer: AdamW
  /** H, the number of inner steps to run */
  steps: number
  batchSize: number
  seqLen: number
  /** batchSize rows of seqLen + 1 token ids for inner step `step` (0-based) */
  batches: (step: number) => Int32Array
  schedule: ScheduleOptions
  /** global inner step of this call's first step; defaults to optimizer.stepCount */
  scheduleOffset?: number
  /** maximum global gradient L2 norm */
  gradClip: number
  onProgress?: (p: LocalTrainingProgress) => void
  /** checked between steps; an abort rejects with the signal's reason */
  signal?: AbortSignal
  /** worker threads to share each step with (same config); the main thread alone when omitted */
  pool?: GradientPool
}

export interface LocalTrainingResult {
  /** the loss of every inner step, in order (NaN where the step was skipped) */
  lossCurve: number[]
  /** steps skipped because the loss or gradient was not finite (weights left untouched) */
  skippedSteps: number
  tokens: number
  seconds: number
}

/** Runs H inner steps on `params` in place; yields to the event loop between steps so heartbeats and signals keep flowing. */
export async function runLocalTraining (opts: LocalTrainingOptions): Promise<LocalTrainingResult> {
  const { params, optimizer, steps, batchSize, seqLen } = opts
  if (!Number.isSafeInteger(steps) || steps < 0) throw new RangeError(`steps ${steps} must be a non-negative integer`)
  if (!(opts.gradClip > 0)) throw new RangeError(`gradClip ${opts.gradClip} must be positive`)
  const grads = createParamSet(params.config)
  const lossCurve: number[] = []
  let skippedSteps = 0
  const tokensPerStep = batchSize * seqLen
  const started = performance.now()
  const offset = opts.scheduleOffset ?? optimizer.stepCount
  for (let step = 0; step < steps; step++) {
    opts.signal?.throwIfAborted()
    const lr = learningRateAt(offset + step, opts.schedule)
    const batch = opts.batches(step)
    const loss = opts.pool === undefined
      ? lossAndGrad(params, batch, batchSize, seqLen, grads).loss
      : await opts.pool.lossAndGrad(params, batch, batchSize, seqLen, grads)
    const gradNorm = clipGradNorm(grads.flat, opts.gradClip)
    if (Number.isFinite(loss) && Number.isFinite(gradNorm)) {
      optimizer.step(params.flat, grads.flat, lr)
      lossCurve.push(loss)
    } else {
      // One poisoned batch must not wreck the weights; the report's checks catch a node that keeps failing.
      skippedSteps++
      lossCurve.push(Number.NaN)
    }
    const seconds = (performance.now() - started) / 1000
    opts.onProgress?.({ step: step + 1, steps, loss, tokensPerSecond: tokensPerStep * (step + 1) / seconds, lr, gradNorm })
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  return { lossCurve, skippedSteps, tokens: tokensPerStep * steps, seconds: (performance.now() - started) / 1000 }
}

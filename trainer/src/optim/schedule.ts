// Learning-rate schedule for the inner loop: linear warmup to the peak, then cosine decay to
// minLr at totalSteps, flat afterwards.

export interface ScheduleOptions { peakLr: number, warmupSteps: number, totalSteps: number, minLr?: number }

/** The learning rate for optimizer step `step` (0-based: the step about to run). */
export function learningRateAt (step: number, opts: ScheduleOptions): number {
  const { peakLr, warmupSteps, totalSteps } = opts
  const minLr = opts.minLr ?? 0
  if (!(step >= 0) || !Number.isFinite(step)) throw new RangeError(`step ${step} must be a non-negative number`)
  if (!(peakLr >= minLr) || !(minLr >= 0) || !(warmupSteps >= 0) || !(totalSteps >= 0)) {
    throw new RangeError(`schedule needs 0 <= minLr <= peakLr and non-negative step counts, got ${JSON.stringify(opts)}`)
  }
  // (step + 1) so the first step already moves: warmup ends exactly at peakLr on step warmupSteps - 1.
  if (step < warmupSteps) return peakLr * (step + 1) / warmupSteps
  if (step >= totalSteps) return minLr
  const progress = (step - warmupSteps) / (totalSteps - warmupSteps)
  return minLr + (peakLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress))
}

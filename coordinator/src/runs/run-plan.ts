import type { StoredRunSpec } from './runs.ts'

/** Where a run stands: rounds closed and tokens folded into its checkpoints. */
export interface RunProgress { rounds: number, tokens: number }

/** Whether a run has reached its goal: its rounds, or its token target. */
export function runIsDone (spec: StoredRunSpec, progress: RunProgress): boolean {
  return (spec.rounds !== undefined && progress.rounds >= spec.rounds) ||
    (spec.tokenTarget !== undefined && progress.tokens >= spec.tokenTarget)
}

/** Rounds the inner learning-rate schedule spans: the run's rounds, or its token target at minNodes per round. */
export function plannedRounds (spec: StoredRunSpec): number {
  if (spec.rounds !== undefined) return spec.rounds
  const perRound = Math.max(1, spec.minNodes) * spec.recipe.innerSteps * spec.recipe.batchSize * spec.recipe.seqLen
  return Math.max(1, Math.ceil((spec.tokenTarget ?? perRound) / perRound))
}

/** The fixed held-out windows every loss of the run is measured on (checkpoints and the unigram baseline alike). */
export function evaluationWindows (spec: StoredRunSpec): { batches: number, batchSize: number, seqLen: number } {
  return { batches: spec.evalBatches, batchSize: spec.recipe.batchSize, seqLen: spec.recipe.seqLen }
}

/** A measured loss as stored: null when it is not a finite number (a diverged model). */
export function storedLoss (loss: number): number | null {
  return Number.isFinite(loss) ? loss : null
}

import { z } from 'zod'
import type { Defences, ExecutorKind, OverlapMode } from '@barnraise/protocol'
import { AGENT_SCORING_MAX_FLOPS, AGENT_TORCH_SCORING_MAX_FLOPS, SCORING_MEMORY_SHARE, TORCH_MAX_PARAMS, TYPESCRIPT_MAX_PARAMS, forwardFlopsPerToken, scoringTaskBytes, scoringTaskFlops, torchScoringTaskBytes } from '@barnraise/trainer'
import type { AggregationRule } from '@barnraise/trainer'
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

/**
 * A checkpoint's validation loss costing more than this many FLOPs (`evaluationFlops`) is
 * measured on a worker thread after its round closes (checkpoints/background-evaluation.ts),
 * not on the event loop: the demo models' take well under a second, a 125M model's hours.
 * `--inline-eval-gflop`.
 */
export const INLINE_EVAL_FLOPS = 2e9

/**
 * The most FLOPs the coordinator spends scoring one report on its event loop (`scorer`); a
 * costlier report is scored by nodes, or not at all. `--inline-score-gflop`, apart from
 * INLINE_EVAL_FLOPS: a report is scored while its round is open, a checkpoint's loss can wait
 * for a worker thread.
 */
export const INLINE_SCORE_FLOPS = 2e9

/** FLOPs of one checkpoint's validation loss: a forward pass over the evaluation windows, T² attention counted (model/cost.ts, as scoring is). */
export function evaluationFlops (spec: StoredRunSpec): number {
  const w = evaluationWindows(spec)
  return w.batches * w.batchSize * w.seqLen * forwardFlopsPerToken(spec.modelConfig, w.seqLen)
}

/** A measured loss as stored: null when it is not a finite number (a diverged model). */
export function storedLoss (loss: number): number | null {
  return Number.isFinite(loss) ? loss : null
}

/** A run's defences; runs from before the setting are plain DiLoCo (mean, no screening). */
export function defencesOf (spec: StoredRunSpec): Defences {
  // Specs stored before a field existed lack it: its default applies.
  return { aggregation: 'mean', trim: 0.2, clipToMedianNorm: null, screening: false, redundancy: 0, ...spec.defences }
}

/** The aggregation rule the trainer runs for these defences. */
export function aggregationRule (d: Defences): AggregationRule {
  switch (d.aggregation) {
    case 'mean': return { rule: 'mean' }
    case 'trimmed-mean': return { rule: 'trimmed-mean', trim: d.trim }
    case 'median': return { rule: 'median' }
    case 'centered-clip': return { rule: 'centered-clip' }
  }
}

/** Whether the open round's reports must be kept whole until it closes (every rule but a plain mean does). */
export function keepsReports (d: Defences): boolean {
  return d.aggregation !== 'mean' || d.clipToMedianNorm !== null
}

/**
 * Whether nodes can rebuild each round's base from the previous round's reports instead of
 * downloading it: a plain mean folds in ledger order, which a node can replay to the bit.
 * Such runs keep a round's reports one round longer, for the nodes to fetch.
 */
export function broadcastsUpdates (d: Defences): boolean {
  return !keepsReports(d)
}

/**
 * The coordinator scores a report by three forward passes on held-out data, on its event loop;
 * above this size (`--score-max-params`) two other nodes score it (rounds/node-scoring.ts).
 */
export const SCORING_MAX_PARAMS = 1_000_000

/** FLOPs of scoring one report: three forward passes (base, base − Δ, base + Δ) over the scoring windows, counted as agents count them. */
export function scoringFlops (spec: StoredRunSpec): number {
  const t = scoringTaskShape(spec)
  return scoringTaskFlops(spec.modelConfig, t.batchSize, t.seqLen)
}

/** Bytes a scoring task of this run needs on the node (weights thrice, a forward pass), counted as agents count them. */
export function scoringBytes (spec: StoredRunSpec): number {
  const t = scoringTaskShape(spec)
  return scoringTaskBytes(spec.modelConfig, t.batchSize, t.seqLen)
}

/** The largest model nodes score with the TypeScript forward pass, past which such agents refuse scoring tasks. */
export const NODE_SCORING_MAX_PARAMS = TYPESCRIPT_MAX_PARAMS

/**
 * Scoring a report costing more than this is not asked of TypeScript scorers: about 10 minutes
 * of one core at 1.6 GFLOP/s. Derived from what agents accept (half of it, the room it always
 * had), so the two limits cannot drift apart.
 */
export const NODE_SCORING_MAX_FLOPS = AGENT_SCORING_MAX_FLOPS / 2

/**
 * The smallest machine the coordinator counts on to score with the TypeScript forward pass:
 * every node is asked only for tasks an agent with this much memory accepts (SCORING_MEMORY_SHARE
 * of it). Long windows of a small model fit the FLOP budget while their T² attention needs
 * gigabytes; an agent with less memory refuses the task and the report is judged without its scores.
 */
export const NODE_SCORING_MEMORY_BYTES = 8 * 2 ** 30

/** Whether an agent scoring with the TypeScript forward pass, with default limits on a machine of NODE_SCORING_MEMORY_BYTES, takes this run's scoring tasks: then any node may be handed them. */
export function typescriptCanScore (spec: StoredRunSpec): boolean {
  return spec.paramCount <= NODE_SCORING_MAX_PARAMS &&
    scoringFlops(spec) <= NODE_SCORING_MAX_FLOPS &&
    scoringBytes(spec) <= SCORING_MEMORY_SHARE * NODE_SCORING_MEMORY_BYTES
}

/**
 * The most scoring work asked of a node that scores with the torch executor: half of what such
 * agents accept (AGENT_TORCH_SCORING_MAX_FLOPS), as for TypeScript scorers. A 1B model's task is
 * about 120 TFLOP; each agent also refuses what its own measured speed cannot finish in the round.
 */
export const NODE_TORCH_SCORING_MAX_FLOPS = AGENT_TORCH_SCORING_MAX_FLOPS / 2

/**
 * The largest device the coordinator counts on for a torch scorer: an 80 GB GPU (H100, A100
 * 80GB). A task needing more than SCORING_MEMORY_SHARE of it is asked of nobody, so the run is
 * screened without held-out scores (and may double units) instead of waiting for scorers that
 * cannot exist.
 */
export const NODE_TORCH_SCORING_MEMORY_BYTES = 80 * 2 ** 30

/** Bytes a scoring task of this run needs on a torch scorer (its device, or the host on torch-cpu), as agents count them (cost.ts). */
export function torchScoringBytes (spec: StoredRunSpec, executor: 'torch-cpu' | 'torch-cuda'): number {
  const t = scoringTaskShape(spec)
  return torchScoringTaskBytes(spec.modelConfig, t.batchSize, t.seqLen, executor)
}

/** Whether a torch agent on a GPU of NODE_TORCH_SCORING_MEMORY_BYTES takes this run's scoring tasks (its model fits the agent, its work the bound). */
export function torchCanScore (spec: StoredRunSpec): boolean {
  return spec.paramCount <= TORCH_MAX_PARAMS &&
    scoringFlops(spec) <= NODE_TORCH_SCORING_MAX_FLOPS &&
    torchScoringBytes(spec, 'torch-cuda') <= SCORING_MEMORY_SHARE * NODE_TORCH_SCORING_MEMORY_BYTES
}

/** Whether some agent would take this run's scoring tasks: any node with the TypeScript forward pass, or a torch node with a large enough device. */
export function nodesCanScore (spec: StoredRunSpec): boolean {
  return typescriptCanScore(spec) || torchCanScore(spec)
}

/** The parts of a stored hardware profile (protocol's hardwareProfileSchema, checked at join) that size a torch scorer. */
const scorerHardwareSchema = z.object({
  memoryBytes: z.number().nonnegative().optional(),
  gpus: z.array(z.object({ memoryMiB: z.number().nonnegative() })).optional()
})

/** What a node says about itself that decides which scoring tasks it is handed: the executor its work requests name, and its hardware profile. */
export interface ScorerClaim {
  executor: ExecutorKind | undefined
  /** its hardware profile as stored from its latest join (nodes.hardware), read through scorerHardwareSchema */
  hardware: unknown
}

/**
 * The memory a node's claims give its torch executor for a scoring task: its smallest GPU's
 * (the one it evaluates on is not named) for torch-cuda, the machine's for torch-cpu; 0 for a
 * node that names no torch executor.
 */
export function claimedScoringMemory (claim: ScorerClaim): number {
  const parsed = scorerHardwareSchema.safeParse(claim.hardware)
  if (!parsed.success) return 0
  const hw = parsed.data
  if (claim.executor === 'torch-cuda') return hw.gpus === undefined || hw.gpus.length === 0 ? 0 : Math.min(...hw.gpus.map((g) => g.memoryMiB)) * 2 ** 20
  if (claim.executor === 'torch-cpu') return hw.memoryBytes ?? 0
  return 0
}

/**
 * Whether a node may be handed this run's scoring tasks: any node where the TypeScript forward
 * pass takes them (typescriptCanScore); for larger ones, only a node naming a torch executor
 * whose claimed memory holds the task with SCORING_MEMORY_SHARE to spare, as the agent checks
 * it. Claims, not proofs: a node that overstates its device only refuses the task it is handed
 * (its report goes unscored, as with fewer than two scorers), and one that understates it is
 * handed fewer tasks.
 */
export function nodeCanScore (spec: StoredRunSpec, claim: ScorerClaim): boolean {
  if (typescriptCanScore(spec)) return true
  if (!torchCanScore(spec) || (claim.executor !== 'torch-cuda' && claim.executor !== 'torch-cpu')) return false
  return torchScoringBytes(spec, claim.executor) <= SCORING_MEMORY_SHARE * claimedScoringMemory(claim)
}

/**
 * Who scores a screened run's reports on held-out data: the coordinator, for a model up to
 * `scoreMaxParams` whose three forward passes fit the event loop's budget (`inlineScoreFlops`,
 * `--inline-score-gflop`); else two other nodes, where agents would take the task
 * (`nodesCanScore`: any node within the TypeScript limits, torch nodes past them); else nobody
 * (screened without held-out scores). Which nodes score a report is NodeScoring.open's choice.
 */
export function scorer (spec: StoredRunSpec, scoreMaxParams: number, inlineScoreFlops: number): 'coordinator' | 'nodes' | 'none' {
  if (spec.paramCount <= scoreMaxParams && scoringFlops(spec) <= inlineScoreFlops) return 'coordinator'
  // What agents would refuse (scoring-task.ts) is asked of nobody: the run then picks twins instead.
  return nodesCanScore(spec) ? 'nodes' : 'none'
}

/** The held-out windows reports are scored on: a few of the validation shard's, fewer than the checkpoint evaluation's. */
export function scoringWindows (spec: StoredRunSpec): { batches: number, batchSize: number, seqLen: number } {
  return { batches: 1, batchSize: Math.min(8, spec.recipe.batchSize * 2), seqLen: spec.recipe.seqLen }
}

/** A scoring task's shape as nodes are handed it (RunCache.scoringWindowsBlob): every scoring window in one batch. What its cost is counted on. */
export function scoringTaskShape (spec: StoredRunSpec): { batchSize: number, seqLen: number } {
  const w = scoringWindows(spec)
  return { batchSize: w.batches * w.batchSize, seqLen: w.seqLen }
}

/** The share of a node's error-feedback residual carried into its next report; runs from before the setting carry all of it. */
export function errorFeedbackDecayOf (spec: StoredRunSpec): number {
  const recipe: { errorFeedbackDecay?: number } = spec.recipe
  return recipe.errorFeedbackDecay ?? 1
}

/** How a run's rounds follow each other; runs from before the setting do not overlap. */
export function overlapOf (spec: StoredRunSpec): OverlapMode {
  return spec.overlap ?? 'none'
}

/** Inner steps of a unit: its own where the run sizes units by throughput, else the run's. */
export function unitInnerSteps (spec: StoredRunSpec, innerSteps: number | null): number {
  return innerSteps ?? spec.recipe.innerSteps
}

/**
 * What one install lets a run ask of it: the coordinator builds each run's initial checkpoint,
 * keeps its base weights in memory and evaluates every round itself, so model size, sequence
 * length and evaluation work are bounded per install (`coordinator serve --max-params` …), and
 * so are what organizers leave behind: unfinished runs each and uploaded dataset storage.
 */
export interface InstallLimits {
  maxParams: number
  maxSeqLen: number
  maxEvalBatches: number
  /** Sequences in one batch (`recipe.batchSize`): a unit's memory on a node and, with the next limit, each evaluation's size. */
  maxBatchSize: number
  /**
   * Tokens one checkpoint's validation loss reads: evalBatches × batchSize × seqLen. The
   * coordinator cuts these windows from the validation shard into memory and computes the
   * unigram baseline over them on its own thread; the limits on the three factors multiply to
   * far more than that can take, so the product has its own.
   */
  maxEvalTokens: number
  /** Unfinished (draft, running, paused) runs one organizer may own at once. */
  maxOpenRuns: number
  /** Bytes of dataset shards the install stores for web uploads, all organizers together. */
  datasetQuotaBytes: number
  /**
   * The part of that one account may take (its stored data and the room its uploads in progress
   * hold); absent, one account may take all of it (`--user-dataset-quota-mb`).
   */
  userDatasetQuotaBytes?: number
  /** Memory one run's open round may hold when its rule keeps every report whole (model × max nodes × 4 bytes). */
  maxKeptReportBytes: number
  /** Whether a dataset's shard URLs may name loopback or private addresses (local tests only). */
  allowPrivateShardUrls?: boolean
}

/** Room for the largest built-in preset (1b); an operator lowers or raises these. */
export const DEFAULT_INSTALL_LIMITS: InstallLimits = {
  maxParams: 1_200_000_000,
  maxSeqLen: 8192,
  maxEvalBatches: 64,
  maxBatchSize: 1024,
  // 64 batches of 8 sequences of 8192 tokens: what the defaults above allowed at the default batch size.
  maxEvalTokens: 4_194_304,
  maxOpenRuns: 10,
  datasetQuotaBytes: 4 * 1024 ** 3,
  maxKeptReportBytes: 8 * 1024 ** 3
}

function count (n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  return n.toLocaleString('en-US')
}

/**
 * One message per limit a run goes over, naming the limit and its flag; empty when it fits.
 * `batchSize` is the recipe's; without it (a caller sizing only the model) the batch and
 * evaluation-token limits are not checked.
 */
export function overInstallLimits (run: { paramCount: number, seqLen: number, evalBatches: number, keptReportBytes: number, batchSize?: number }, limits: InstallLimits): Array<{ field: string, message: string }> {
  const over: Array<{ field: string, message: string }> = []
  if (run.paramCount > limits.maxParams) {
    over.push({ field: 'model', message: `the model has ${count(run.paramCount)} parameters; this coordinator allows at most ${count(limits.maxParams)} (--max-params)` })
  }
  if (run.seqLen > limits.maxSeqLen) {
    over.push({ field: 'recipe.seqLen', message: `sequence length ${run.seqLen} is over this coordinator's limit of ${limits.maxSeqLen} (--max-seq-len)` })
  }
  if (run.evalBatches > limits.maxEvalBatches) {
    over.push({ field: 'evalBatches', message: `${run.evalBatches} evaluation batches a round is over this coordinator's limit of ${limits.maxEvalBatches} (--max-eval-batches)` })
  }
  if (run.batchSize !== undefined && run.batchSize > limits.maxBatchSize) {
    over.push({ field: 'recipe.batchSize', message: `batch size ${run.batchSize} is over this coordinator's limit of ${limits.maxBatchSize} sequences (--max-batch-size)` })
  }
  const evalTokens = run.batchSize === undefined ? 0 : run.evalBatches * run.batchSize * run.seqLen
  if (evalTokens > limits.maxEvalTokens) {
    over.push({ field: 'evalBatches', message: `each evaluation would read ${count(evalTokens)} tokens (evalBatches ${run.evalBatches} × recipe.batchSize ${run.batchSize} × recipe.seqLen ${run.seqLen}); this coordinator allows ${count(limits.maxEvalTokens)} (--max-eval-tokens). Use fewer evaluation batches` })
  }
  if (run.keptReportBytes > limits.maxKeptReportBytes) {
    over.push({ field: 'defences.aggregation', message: `this rule keeps every report of a round in memory, ${(run.keptReportBytes / 1024 ** 3).toFixed(1)} GiB at the most nodes a round takes; this coordinator allows ${(limits.maxKeptReportBytes / 1024 ** 3).toFixed(1)} GiB (--max-kept-report-mb). Use the mean, or fewer nodes per round` })
  }
  return over
}

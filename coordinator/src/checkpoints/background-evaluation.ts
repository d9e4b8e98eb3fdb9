// Validation losses too costly for the event loop. A checkpoint's loss is a forward pass over the
// run's evaluation windows: milliseconds for the demo models, hours for a 125M one in TypeScript
// on this machine (1.6 GFLOP/s). Those run here, one checkpoint at a time, after the round has
// closed without them: by PyTorch in a child process when the coordinator has it
// (torch-evaluation.ts, `--evaluator`), else by the TypeScript forward pass on a worker thread. A
// run's checkpoint still waiting when a newer one arrives is skipped (it keeps no loss), so the
// queue never holds more than one checkpoint a run.
import type { Readable } from 'node:stream'
import type { Kysely } from 'kysely'
import type { LlamaConfig } from '@barnraise/protocol'
import { forwardFlopsPerToken, validationLossInWorker } from '@barnraise/trainer'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { Logger } from '../log.ts'

/** One checkpoint to measure: its run's model and the token ids of the run's evaluation batches. */
export interface EvaluationJob {
  runId: string
  sha: string
  config: LlamaConfig
  batches: Int32Array[]
  batchSize: number
  seqLen: number
}

/**
 * A stored checkpoint, read the way its evaluator needs it: whole (the worker thread) or as a
 * stream into the torch child's file, so a 1B model's 4 GB are not held in the coordinator's
 * memory while Python measures them.
 */
export interface CheckpointSource {
  bytes: () => Promise<Uint8Array>
  stream: () => Readable
}

/** What measures a checkpoint's loss off the event loop. */
export interface CheckpointEvaluator {
  /** A torch evaluation that fails is measured again by the TypeScript worker. */
  readonly kind: 'typescript' | 'torch'
  /** For the log: what measures, and where. */
  readonly name: string
  /** The checkpoint's mean loss over the job's windows, null when it is not finite. */
  measure: (job: EvaluationJob, checkpoint: CheckpointSource, signal: AbortSignal) => Promise<number | null>
}

/** The TypeScript forward pass on a worker thread: always there, to the bit what the event loop measures. */
export const TYPESCRIPT_EVALUATOR: CheckpointEvaluator = {
  kind: 'typescript',
  name: 'the TypeScript forward pass on a worker thread',
  measure: async (job, checkpoint, signal) => {
    const loss = await validationLossInWorker(job.config, await checkpoint.bytes(), job.batches, job, signal)
    return Number.isFinite(loss) ? loss : null
  }
}

/**
 * The least a checkpoint's forward passes cost (FLOPs) for torch to measure them: below it the
 * TypeScript worker thread is as quick, since starting Python and importing torch costs seconds
 * (the demo model's 2.2 GFLOP took 13 s by torch on a busy 2-core VM and about 2 s on the worker
 * thread), and its number is then the event loop's to the bit. 50 GFLOP is about half a minute
 * on the worker thread. `--torch-eval-gflop`.
 */
export const TORCH_MIN_EVAL_FLOPS = 50e9

/** FLOPs of a job's forward passes (T² attention counted, as run-plan's evaluationFlops). */
export function evaluationJobFlops (job: Pick<EvaluationJob, 'config' | 'batches' | 'batchSize' | 'seqLen'>): number {
  return job.batches.length * job.batchSize * job.seqLen * forwardFlopsPerToken(job.config, job.seqLen)
}

/** Torch failures in a row after which the coordinator stops trying it until restarted: each one costs a process start, a timeout at worst. */
export const TORCH_FAILURES_BEFORE_GIVING_UP = 3

export interface BackgroundEvaluationOptions {
  db: Kysely<Database>
  blobs: BlobStore
  log: Logger
  /**
   * What measures (default TYPESCRIPT_EVALUATOR), or how to choose it: called when the first
   * checkpoint needs measuring, with a signal aborted by `stop()` (`--evaluator auto` probes for
   * torch then, so a coordinator whose runs never need it never starts Python); a rejection
   * means the TypeScript worker.
   */
  evaluator?: CheckpointEvaluator | ((signal: AbortSignal) => Promise<CheckpointEvaluator>)
  /** Checkpoints whose forward passes cost fewer FLOPs than this go to the TypeScript worker whatever the evaluator (default TORCH_MIN_EVAL_FLOPS). */
  torchMinFlops?: number
  /** Told when a checkpoint of `runId` got its loss (the dashboard's live updates). */
  onMeasured?: (runId: string) => void
}

/**
 * Measures checkpoints' validation losses off the event loop, the newest of each run, one at a
 * time: with the evaluator it was given, falling back to the TypeScript worker for a checkpoint
 * torch failed on.
 */
export class BackgroundEvaluation {
  readonly #o: BackgroundEvaluationOptions
  /** Per run, the newest checkpoint waiting (insertion order: runs take turns). */
  readonly #waiting = new Map<string, EvaluationJob>()
  readonly #abort = new AbortController()
  #running: Promise<void> | null = null
  /** The checkpoint being measured now. */
  #measuring: { runId: string, sha: string } | null = null
  /** The evaluator, once chosen (undefined until the first checkpoint needs one). */
  #evaluator: CheckpointEvaluator | Promise<CheckpointEvaluator> | undefined
  /** Torch failures since its last success. */
  #torchFailures = 0

  constructor (options: BackgroundEvaluationOptions) {
    this.#o = options
    const chosen = options.evaluator ?? TYPESCRIPT_EVALUATOR
    if (typeof chosen !== 'function') this.#evaluator = chosen
  }

  /** The evaluator, choosing it on first use; a failed choice is the TypeScript worker. */
  #chosen (): CheckpointEvaluator | Promise<CheckpointEvaluator> {
    const choose = this.#o.evaluator
    if (this.#evaluator === undefined && typeof choose === 'function') {
      this.#evaluator = choose(this.#abort.signal).catch((err: unknown) => {
        if (!this.#abort.signal.aborted) this.#o.log.warn('no torch evaluator; validation losses are measured on a worker thread', { error: err instanceof Error ? err.message : String(err) })
        return TYPESCRIPT_EVALUATOR
      })
    }
    return this.#evaluator ?? TYPESCRIPT_EVALUATOR
  }

  /** Queues `job`; a checkpoint of the same run still waiting is dropped and keeps no loss. */
  schedule (job: EvaluationJob): void {
    if (this.#abort.signal.aborted) return
    // Asked again for what is waiting or being measured (the engine asks for round 0's loss on
    // every tick until the run's first round opens): nothing to do.
    if (this.#waiting.get(job.runId)?.sha === job.sha) return
    if (this.#measuring?.runId === job.runId && this.#measuring.sha === job.sha) return
    const dropped = this.#waiting.get(job.runId)
    if (dropped !== undefined) this.#o.log.info('validation skipped: a newer checkpoint is waiting', { runId: job.runId, skipped: dropped.sha, newer: job.sha })
    // Deleted first so the run goes to the back of the turn order.
    this.#waiting.delete(job.runId)
    this.#waiting.set(job.runId, job)
    this.#running ??= this.#drain()
  }

  /** Resolves once nothing is waiting or being measured. */
  async idle (): Promise<void> {
    while (this.#running !== null) await this.#running
  }

  /** Stops the worker; what is waiting is dropped. */
  async stop (): Promise<void> {
    this.#abort.abort(new Error('the coordinator is stopping'))
    this.#waiting.clear()
    await this.#running?.catch(() => {})
  }

  async #drain (): Promise<void> {
    for (;;) {
      const next = this.#waiting.entries().next()
      if (next.done === true || this.#abort.signal.aborted) {
        // Cleared here, not in a later microtask, so a job scheduled right after is drained.
        this.#running = null
        return
      }
      const [runId, job] = next.value
      this.#waiting.delete(runId)
      this.#measuring = { runId, sha: job.sha }
      try {
        await this.#measure(job)
      } finally {
        this.#measuring = null
      }
    }
  }

  async #measure (job: EvaluationJob): Promise<void> {
    const { db, blobs, log } = this.#o
    const started = Date.now()
    try {
      // Pruned meanwhile: said here, not as a torch failure.
      if (await blobs.size(job.sha) === undefined) throw new Error(`checkpoint ${job.sha} is no longer stored`)
      const checkpoint: CheckpointSource = { bytes: async () => await blobs.get(job.sha), stream: () => blobs.createReadStream(job.sha) }
      const { loss, by } = await this.#loss(job, checkpoint)
      // Only rows still without a loss: a checkpoint measured before (one sha, two runs) keeps its figure.
      await db.updateTable('checkpoints').set({ val_loss: loss }).where('sha256', '=', job.sha).where('run_id', '=', job.runId).where('val_loss', 'is', null).execute()
      await db.updateTable('rounds').set({ val_loss: loss }).where('run_id', '=', job.runId).where('result_checkpoint', '=', job.sha).where('val_loss', 'is', null).execute()
      const seconds = Math.round((Date.now() - started) / 1000)
      if (by.kind === 'typescript') log.info('checkpoint validated on a worker thread', { runId: job.runId, sha: job.sha, loss, seconds })
      else log.info('checkpoint validated with PyTorch', { runId: job.runId, sha: job.sha, loss, seconds, evaluator: by.name })
      this.#o.onMeasured?.(job.runId)
    } catch (err) {
      if (this.#abort.signal.aborted) return
      // A checkpoint pruned meanwhile, a worker out of memory: the checkpoint keeps no loss, the round loop goes on.
      log.warn('checkpoint validation failed', { runId: job.runId, sha: job.sha, error: err instanceof Error ? err.message : String(err) })
    }
  }

  /** The loss by the chosen evaluator, or by the TypeScript worker when torch failed on it. */
  async #loss (job: EvaluationJob, checkpoint: CheckpointSource): Promise<{ loss: number | null, by: CheckpointEvaluator }> {
    // Small enough that starting Python would cost more than it saves: no evaluator is chosen for it.
    const small = evaluationJobFlops(job) < (this.#o.torchMinFlops ?? TORCH_MIN_EVAL_FLOPS)
    const evaluator = small ? TYPESCRIPT_EVALUATOR : await this.#chosen()
    this.#abort.signal.throwIfAborted()
    this.#evaluator = evaluator
    if (evaluator.kind === 'typescript') return { loss: await evaluator.measure(job, checkpoint, this.#abort.signal), by: evaluator }
    try {
      const loss = await evaluator.measure(job, checkpoint, this.#abort.signal)
      this.#torchFailures = 0
      return { loss, by: evaluator }
    } catch (err) {
      if (this.#abort.signal.aborted) throw err
      // A crash, out of memory, a hung child: the checkpoint still gets its loss, only slower.
      const code = (err as { code?: unknown }).code
      this.#o.log.warn('torch evaluation failed; measuring this checkpoint on a worker thread instead', { runId: job.runId, sha: job.sha, code, error: err instanceof Error ? err.message : String(err) })
      if (++this.#torchFailures >= TORCH_FAILURES_BEFORE_GIVING_UP) {
        this.#o.log.warn(`torch failed ${this.#torchFailures} checkpoints in a row; the TypeScript worker measures the rest until the coordinator restarts`, { evaluator: evaluator.name })
        this.#evaluator = TYPESCRIPT_EVALUATOR
      }
      return { loss: await TYPESCRIPT_EVALUATOR.measure(job, checkpoint, this.#abort.signal), by: TYPESCRIPT_EVALUATOR }
    }
  }

  /** The evaluator that measures (choosing it now if no checkpoint has needed it yet), for tests and logs. */
  async evaluator (): Promise<CheckpointEvaluator> {
    return await this.#chosen()
  }
}

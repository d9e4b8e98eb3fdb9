// Validation losses too costly for the event loop. A checkpoint's loss is a TypeScript forward
// pass over the run's evaluation windows: milliseconds for the demo models, hours for a 125M
// one on this machine (1.6 GFLOP/s). Those run here, on one worker thread at a time, after the
// round has closed without them; a run's checkpoint still waiting when a newer one arrives is
// skipped (it keeps no loss), so the queue never holds more than one checkpoint a run.
import type { Kysely } from 'kysely'
import type { LlamaConfig } from '@barnraise/protocol'
import { validationLossInWorker } from '@barnraise/trainer'
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

export interface BackgroundEvaluationOptions {
  db: Kysely<Database>
  blobs: BlobStore
  log: Logger
  /** Told when a checkpoint of `runId` got its loss (the dashboard's live updates). */
  onMeasured?: (runId: string) => void
}

/** Measures checkpoints' validation losses on a worker thread, the newest of each run, one at a time. */
export class BackgroundEvaluation {
  readonly #o: BackgroundEvaluationOptions
  /** Per run, the newest checkpoint waiting (insertion order: runs take turns). */
  readonly #waiting = new Map<string, EvaluationJob>()
  readonly #abort = new AbortController()
  #running: Promise<void> | null = null
  /** The checkpoint on the worker thread now. */
  #measuring: { runId: string, sha: string } | null = null

  constructor (options: BackgroundEvaluationOptions) {
    this.#o = options
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
      const checkpoint = await blobs.get(job.sha)
      const measured = await validationLossInWorker(job.config, checkpoint, job.batches, job, this.#abort.signal)
      const loss = Number.isFinite(measured) ? measured : null
      // Only rows still without a loss: a checkpoint measured before (one sha, two runs) keeps its figure.
      await db.updateTable('checkpoints').set({ val_loss: loss }).where('sha256', '=', job.sha).where('run_id', '=', job.runId).where('val_loss', 'is', null).execute()
      await db.updateTable('rounds').set({ val_loss: loss }).where('run_id', '=', job.runId).where('result_checkpoint', '=', job.sha).where('val_loss', 'is', null).execute()
      log.info('checkpoint validated on a worker thread', { runId: job.runId, sha: job.sha, loss, seconds: Math.round((Date.now() - started) / 1000) })
      this.#o.onMeasured?.(job.runId)
    } catch (err) {
      if (this.#abort.signal.aborted) return
      // A checkpoint pruned meanwhile, a worker out of memory: the checkpoint keeps no loss, the round loop goes on.
      log.warn('checkpoint validation failed', { runId: job.runId, sha: job.sha, error: err instanceof Error ? err.message : String(err) })
    }
  }
}

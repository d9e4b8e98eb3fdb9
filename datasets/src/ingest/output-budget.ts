// The byte budget of one ingest job, counted by the worker as it writes (see `IngestBudget`).
import { DatasetError } from '../dataset-error.ts'
import type { IngestBudget } from './ingest-job.ts'

const MIB = 1024 * 1024

/** A size for a message: MiB with one decimal, KiB below one MiB (as the coordinator writes them). */
export function byteAmount (bytes: number): string {
  return bytes === 0 || Math.abs(bytes) >= MIB ? `${(bytes / MIB).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`
}

/** Bytes an ingest job has written, refused before they would pass its budget. */
export class OutputBudget {
  readonly #budget: IngestBudget | null
  readonly #progress: () => string
  #written = 0

  /** `progress` says how far tokenizing got, for the refusal: "after 1200 documents". */
  constructor (budget: IngestBudget | null, progress: () => string) {
    this.#budget = budget
    this.#progress = progress
  }

  /** Bytes counted so far. */
  get written (): number { return this.#written }

  /**
   * Counts `bytes` about to be written as `what` ("train shard train-00003"); throws
   * ERR_QUOTA_EXCEEDED, before anything is written, when they would pass the budget.
   */
  take (bytes: number, what: string): void {
    const budget = this.#budget
    if (budget !== null && this.#written + bytes > budget.bytes) {
      throw new DatasetError('ERR_QUOTA_EXCEEDED', `tokenizing stopped ${this.#progress()}: ${what} (${byteAmount(bytes)}) would take this dataset's shards and index past ${byteAmount(budget.bytes)} (${byteAmount(this.#written)} so far), the room it had when tokenizing began: ${budget.limit}; ${budget.advice}`)
    }
    this.#written += bytes
  }
}

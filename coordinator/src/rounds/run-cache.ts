import type { Kysely } from 'kysely'
import { decodePseudoGradient, parseReportMetadata } from '@barnraise/protocol'
import { decodeShard, validationLoss, createParamSet } from '@barnraise/trainer'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { Logger } from '../log.ts'
import { RoundAccumulator } from './accumulator.ts'
import type { StoredRunSpec } from '../runs/runs.ts'
import { evaluationWindows, storedLoss } from '../runs/run-plan.ts'
import { checkpointWeights } from '../checkpoints/checkpoint-weights.ts'

/** What the coordinator keeps in memory for a running run; all of it can be rebuilt from the database and blob store. */
interface LoadedRun {
  readonly spec: StoredRunSpec
  /** The weights of the checkpoint the open (or next) round starts from. */
  base?: { sha: string, flat: Float32Array }
  validation?: Uint8Array | Int32Array
  /** The open round's running sum; undefined between rounds. */
  acc?: RoundAccumulator
}

/**
 * Per-run state shared by the round engine and report intake: the resolved spec, the current
 * base weights, the validation tokens and the open round's running sum. The cache is the only
 * writer of that state; the engine tells it what happened (a round opened, closed or was
 * dropped) and it keeps base and sum consistent with the rows.
 */
export class RunCache {
  readonly #d: { db: Kysely<Database>, blobs: BlobStore, log: Logger }
  readonly #loaded = new Map<string, LoadedRun>()

  constructor (deps: { db: Kysely<Database>, blobs: BlobStore, log: Logger }) {
    this.#d = deps
  }

  /** Drops a run's cached state (after it failed). */
  forget (runId: string): void {
    this.#loaded.delete(runId)
  }

  /** The run's resolved spec. */
  async spec (runId: string): Promise<StoredRunSpec> {
    return (await this.#load(runId)).spec
  }

  /** The weights of checkpoint `sha`, kept while it is the run's base. */
  async base (runId: string, sha: string): Promise<Float32Array> {
    const loaded = await this.#load(runId)
    if (loaded.base?.sha !== sha) {
      loaded.base = { sha, flat: checkpointWeights(loaded.spec.modelConfig, await this.#d.blobs.get(sha)) }
    }
    return loaded.base.flat
  }

  /** The open round's running sum, rebuilt from accepted reports on disk after a restart. */
  async accumulator (runId: string, roundId: string): Promise<RoundAccumulator> {
    const loaded = await this.#load(runId)
    if (loaded.acc?.roundId === roundId) return loaded.acc
    const acc = new RoundAccumulator(roundId, loaded.spec.paramCount)
    const accepted = await this.#d.db.selectFrom('assignments')
      .innerJoin('ledger', (j) => j.onRef('ledger.assignment_id', '=', 'assignments.id').on('ledger.outcome', '=', 'accepted'))
      .select(['assignments.report_blob', 'ledger.tokens', 'ledger.metadata'])
      .where('assignments.round_id', '=', roundId).where('assignments.status', '=', 'accepted').execute()
    for (const a of accepted) {
      const delta = decodePseudoGradient(loaded.spec.codec, await this.#d.blobs.get(a.report_blob!), loaded.spec.paramCount)
      const signed = a.metadata === null ? undefined : parseReportMetadata(a.metadata)
      acc.fold(delta, a.tokens, signed?.lossCurve.at(-1))
    }
    loaded.acc = acc
    if (accepted.length > 0) this.#d.log.info('round sum rebuilt from disk', { roundId, reports: accepted.length })
    return acc
  }

  /** Held-out loss of `flat` on the run's fixed evaluation windows; null when it is not finite. */
  async validationLoss (runId: string, flat: Float32Array): Promise<number | null> {
    const loaded = await this.#load(runId)
    loaded.validation ??= decodeShard(await this.#d.blobs.get(loaded.spec.validationShard.sha256)).tokens
    return storedLoss(validationLoss(createParamSet(loaded.spec.modelConfig, flat), loaded.validation, evaluationWindows(loaded.spec)))
  }

  /** A round was opened: its running sum starts empty. */
  async openRound (runId: string, roundId: string): Promise<void> {
    const loaded = await this.#load(runId)
    loaded.acc = new RoundAccumulator(roundId, loaded.spec.paramCount)
  }

  /** A round closed into checkpoint `sha`: those weights are the next base, and no round is open. */
  async advanceBase (runId: string, sha: string, flat: Float32Array): Promise<void> {
    const loaded = await this.#load(runId)
    loaded.base = { sha, flat }
    loaded.acc = undefined
  }

  /** A round was abandoned with nothing accepted: no round is open, the base stays. */
  dropRound (runId: string): void {
    const loaded = this.#loaded.get(runId)
    if (loaded !== undefined) loaded.acc = undefined
  }

  async #load (runId: string): Promise<LoadedRun> {
    let loaded = this.#loaded.get(runId)
    if (loaded === undefined) {
      const row = await this.#d.db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirstOrThrow()
      loaded = { spec: row.spec }
      this.#loaded.set(runId, loaded)
    }
    return loaded
  }
}

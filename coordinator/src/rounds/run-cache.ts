import type { Kysely } from 'kysely'
import { parseReportMetadata } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { Logger } from '../log.ts'
import { RoundAccumulator } from './accumulator.ts'
import type { ResolvedRunSpec } from '../runs/runs.ts'
import type { ModelOps } from '../runs/model-ops.ts'

/** What the coordinator keeps in memory for a running run; all of it can be rebuilt from the database and blob store. */
export interface LoadedRun {
  spec: ResolvedRunSpec
  base?: { sha: string, flat: Float32Array }
  validation?: Uint8Array | Int32Array
  acc?: RoundAccumulator
}

/**
 * Per-run state shared by the round engine and report intake: the resolved spec, the current
 * base weights, the validation tokens and the open round's running sum.
 */
export class RunCache {
  readonly #d: { db: Kysely<Database>, blobs: BlobStore, ops: ModelOps, log: Logger }
  readonly #loaded = new Map<string, LoadedRun>()

  constructor (deps: { db: Kysely<Database>, blobs: BlobStore, ops: ModelOps, log: Logger }) {
    this.#d = deps
  }

  /** Drops a run's cached state (after it failed). */
  forget (runId: string): void {
    this.#loaded.delete(runId)
  }

  /** The run's resolved spec and cached state. */
  async load (runId: string): Promise<LoadedRun> {
    let loaded = this.#loaded.get(runId)
    if (loaded === undefined) {
      const row = await this.#d.db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirstOrThrow()
      loaded = { spec: row.spec as ResolvedRunSpec }
      this.#loaded.set(runId, loaded)
    }
    return loaded
  }

  /** The weights of checkpoint `sha`, kept while it is the run's base. */
  async base (loaded: LoadedRun, sha: string): Promise<Float32Array> {
    if (loaded.base?.sha !== sha) {
      loaded.base = { sha, flat: this.#d.ops.readCheckpoint(loaded.spec.modelConfig, await this.#d.blobs.get(sha)) }
    }
    return loaded.base.flat
  }

  /** The open round's running sum, rebuilt from accepted reports on disk after a restart. */
  async accumulator (loaded: LoadedRun, roundId: string): Promise<RoundAccumulator> {
    if (loaded.acc?.roundId === roundId) return loaded.acc
    const acc = new RoundAccumulator(roundId, loaded.spec.paramCount)
    const accepted = await this.#d.db.selectFrom('assignments')
      .innerJoin('ledger', (j) => j.onRef('ledger.assignment_id', '=', 'assignments.id').on('ledger.outcome', '=', 'accepted'))
      .select(['assignments.report_blob', 'ledger.tokens', 'ledger.metadata'])
      .where('assignments.round_id', '=', roundId).where('assignments.status', '=', 'accepted').execute()
    for (const a of accepted) {
      const delta = this.#d.ops.decode(loaded.spec.codec, await this.#d.blobs.get(a.report_blob!), loaded.spec.paramCount)
      const signed = a.metadata === null ? undefined : parseReportMetadata(a.metadata)
      acc.fold(delta, a.tokens, signed?.lossCurve.at(-1))
    }
    loaded.acc = acc
    if (accepted.length > 0) this.#d.log.info('round sum rebuilt from disk', { roundId, reports: accepted.length })
    return acc
  }

  /** The run's held-out tokens. */
  async validation (loaded: LoadedRun): Promise<Uint8Array | Int32Array> {
    const tokens = loaded.validation ?? this.#d.ops.readShard(await this.#d.blobs.get(loaded.spec.validationShard.sha256))
    loaded.validation = tokens
    return tokens
  }
}

// "Which documents went into checkpoint N": the accepted work units of the rounds that made it,
// their shard ranges, and the dataset's document index. The tracing and the bodies are made on
// the document-index worker; this thread only queries the units and sends finished bytes.
import type { Kysely } from 'kysely'
import type { ProvenanceAnswer } from '@barnraise/datasets'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { StoredRunSpec } from '../runs/runs.ts'
import { CoordinatorError } from '../errors.ts'
import { documentIndexes } from './document-indexes.ts'

export type { CheckpointProvenance, ProvenanceAnswer } from '@barnraise/datasets'

/** Bytes of kept answers (their JSON and CSV bodies); the latest answer is kept whatever its size. */
const KEPT_ANSWER_BYTES = 256 * 1024 * 1024

/** Traces a public request may start while others are still being made (each takes the worker seconds on a large index). */
const MAX_PUBLIC_TRACES = 2

/**
 * Answers by run and checkpoint round. A closed round's accepted units never change, so an
 * answer holds for good: a public route asked again, or by many at once, shares one trace
 * instead of each request walking the index again. Bounded by bytes, not count: one answer of
 * a run with millions of documents is hundreds of megabytes.
 */
export class AnswerCache {
  readonly #answers = new Map<string, { answer: Promise<ProvenanceAnswer>, bytes: number }>()
  #bytes = 0
  #making = 0

  /** The answer for `key`, made when not kept; `limited` (a public request) is refused ERR_BUSY rather than queue a trace behind MAX_PUBLIC_TRACES others. */
  async get (key: string, make: () => Promise<ProvenanceAnswer>, limited: boolean): Promise<ProvenanceAnswer> {
    const kept = this.#answers.get(key)
    if (kept !== undefined) {
      this.#answers.delete(key)
      this.#answers.set(key, kept)
      return await kept.answer
    }
    if (limited && this.#making >= MAX_PUBLIC_TRACES) {
      throw new CoordinatorError('ERR_BUSY', `the coordinator is already listing the documents of ${this.#making} other checkpoints; ask again in a minute`)
    }
    this.#making++
    const entry = { answer: make().finally(() => { this.#making-- }), bytes: 0 }
    this.#answers.set(key, entry)
    try {
      const answer = await entry.answer
      if (this.#answers.get(key) === entry) {
        entry.bytes = answer.json.byteLength + answer.csv.byteLength + answer.summary.firstRounds.byteLength
        this.#bytes += entry.bytes
        this.#evict(key)
      }
      return answer
    } catch (err) {
      // A failed trace is not kept: the next request tries again.
      if (this.#answers.get(key) === entry) this.#answers.delete(key)
      throw err
    }
  }

  #evict (keep: string): void {
    for (const [key, entry] of this.#answers) {
      if (this.#bytes <= KEPT_ANSWER_BYTES) return
      if (key === keep || entry.bytes === 0) continue
      this.#answers.delete(key)
      this.#bytes -= entry.bytes
    }
  }
}

const answers = new AnswerCache()

/**
 * The provenance of a run's checkpoint after `round` (its latest when absent), as bodies to
 * send. `limited`: a public request, refused ERR_BUSY while traces are already being made.
 */
export async function checkpointProvenance (deps: { db: Kysely<Database>, blobs: BlobStore }, runId: string, round?: number, limited = false): Promise<ProvenanceAnswer> {
  const run = await deps.db.selectFrom('runs').select(['spec', 'current_round']).where('id', '=', runId).executeTakeFirst()
  if (run === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no run ${runId}`)
  const spec = run.spec
  if (spec.documentIndex === undefined || spec.documentIndex === null) {
    throw new CoordinatorError('ERR_NOT_FOUND', 'this run\'s dataset has no document index: datasets uploaded for tokenizing (datasets.create) and URL manifests with a documents entry (barnraise-agent shard writes one) record their documents; the demo corpus, plain shard lists and manifests without that entry do not')
  }
  const checkpoint = round === undefined
    ? await deps.db.selectFrom('checkpoints').select('round').where('run_id', '=', runId).orderBy('round', 'desc').limit(1).executeTakeFirst()
    : await deps.db.selectFrom('checkpoints').select('round').where('run_id', '=', runId).where('round', '=', round).executeTakeFirst()
  if (checkpoint === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `run ${runId} has no checkpoint for round ${round ?? 'latest'}`)
  return await answers.get(`${runId}:${checkpoint.round}`, async () => await traceCheckpoint(deps, runId, spec, checkpoint.round), limited)
}

async function traceCheckpoint (deps: { db: Kysely<Database>, blobs: BlobStore }, runId: string, spec: StoredRunSpec, round: number): Promise<ProvenanceAnswer> {
  const rows = await deps.db.selectFrom('assignments')
    .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
    .innerJoin('nodes', 'nodes.id', 'assignments.node_id')
    .select(['rounds.number', 'nodes.peer_id', 'assignments.ranges'])
    .where('assignments.run_id', '=', runId).where('assignments.status', '=', 'accepted')
    .where('rounds.status', '=', 'closed').where('rounds.number', '<=', round)
    .orderBy('rounds.number').orderBy('assignments.created_at')
    .execute()
  const units = rows.map((r) => ({ round: r.number, node: r.peer_id, ranges: r.ranges }))
  const dataset = spec.dataset.source === 'dataset'
    ? (await deps.db.selectFrom('datasets').select('name').where('id', '=', spec.dataset.id).executeTakeFirst())?.name ?? null
    : null
  const indexSha = spec.documentIndex!
  // The index's bytes travel to the worker only when it does not hold it already.
  return await documentIndexes.trace(indexSha, async () => await deps.blobs.get(indexSha), { runId, round, dataset }, units)
}

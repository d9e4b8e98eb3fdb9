// "Which documents went into checkpoint N": the accepted work units of the rounds that made it,
// their shard ranges, and the dataset's document index.
import type { Kysely } from 'kysely'
import type { TrainedDocument, TrainedUnit } from '@barnraise/datasets'
import type { Database } from '../db/schema.ts'
import type { StoredRunSpec } from '../runs/runs.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { CoordinatorError } from '../errors.ts'
import { documentIndexes } from './document-indexes.ts'

export type { TrainedDocument, TrainedUnit } from '@barnraise/datasets'

export interface CheckpointProvenance {
  runId: string
  /** the checkpoint's round: it folds the units of rounds 1..round */
  round: number
  dataset: string | null
  source: string
  tokenizer: string
  units: TrainedUnit[]
  documents: TrainedDocument[]
  /** documents held out for validation, never trained on */
  heldOut: string[]
}

/**
 * Answers by run and checkpoint round. A closed round's accepted units never change, so an
 * answer holds for good: a public route asked again (or by many at once) shares one trace
 * instead of each request walking the index again. The last few are kept.
 */
const answers = new Map<string, Promise<CheckpointProvenance>>()
const KEPT_ANSWERS = 8

/** The provenance of a run's checkpoint after `round` (its latest when absent). */
export async function checkpointProvenance (deps: { db: Kysely<Database>, blobs: BlobStore }, runId: string, round?: number): Promise<CheckpointProvenance> {
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
  const key = `${runId}:${checkpoint.round}`
  let answer = answers.get(key)
  if (answer === undefined) {
    answer = traceCheckpoint(deps, runId, spec, checkpoint.round)
    answers.set(key, answer)
    // A failed trace is not kept: the next request tries again.
    answer.catch(() => { if (answers.get(key) === answer) answers.delete(key) })
    if (answers.size > KEPT_ANSWERS) answers.delete(answers.keys().next().value!)
  }
  return await answer
}

async function traceCheckpoint (deps: { db: Kysely<Database>, blobs: BlobStore }, runId: string, spec: StoredRunSpec, checkpointRound: number): Promise<CheckpointProvenance> {
  const checkpoint = { round: checkpointRound }
  const rows = await deps.db.selectFrom('assignments')
    .innerJoin('rounds', 'rounds.id', 'assignments.round_id')
    .innerJoin('nodes', 'nodes.id', 'assignments.node_id')
    .select(['rounds.number', 'nodes.peer_id', 'assignments.ranges'])
    .where('assignments.run_id', '=', runId).where('assignments.status', '=', 'accepted')
    .where('rounds.status', '=', 'closed').where('rounds.number', '<=', checkpoint.round)
    .orderBy('rounds.number').orderBy('assignments.created_at')
    .execute()
  const units = rows.map((r) => ({ round: r.number, node: r.peer_id, ranges: r.ranges }))
  const indexSha = spec.documentIndex!
  // Parsing and walking the index happen on the worker thread; its bytes travel only when it does not hold them.
  const trace = await documentIndexes.trace(indexSha, async () => await deps.blobs.get(indexSha), units)
  const dataset = spec.dataset.source === 'dataset'
    ? (await deps.db.selectFrom('datasets').select('name').where('id', '=', spec.dataset.id).executeTakeFirst())?.name ?? null
    : null
  return {
    runId,
    round: checkpoint.round,
    dataset,
    source: trace.source,
    tokenizer: trace.tokenizer,
    units,
    documents: trace.documents,
    heldOut: trace.heldOut
  }
}

const csvField = (v: string): string => /[",\n\r]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v

const bodies = new WeakMap<CheckpointProvenance, { json?: string, csv?: string }>()

/** The trained documents as CSV: locator, tokens, trained tokens, rounds and nodes (space-separated); made once per kept answer. */
export function provenanceCsv (p: CheckpointProvenance): string {
  const made = bodies.get(p) ?? {}
  if (made.csv === undefined) {
    const lines = ['source,locator,tokens,trained_tokens,rounds,nodes']
    for (const d of p.documents) lines.push([csvField(p.source), csvField(d.locator), d.tokens, d.trainedTokens, d.rounds.join(' '), d.nodes.join(' ')].join(','))
    made.csv = lines.join('\n') + '\n'
    bodies.set(p, made)
  }
  return made.csv
}

/** The provenance as JSON text; made once per kept answer (it can be megabytes). */
export function provenanceJson (p: CheckpointProvenance): string {
  const made = bodies.get(p) ?? {}
  made.json ??= JSON.stringify(p)
  bodies.set(p, made)
  return made.json
}

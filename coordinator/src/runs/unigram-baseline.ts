import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { addTokenCounts, decodeShard, unigramBaselineLoss } from '@barnraise/trainer'
import type { StoredRunSpec } from './runs.ts'
import { evaluationWindows } from './run-plan.ts'

// One computation per run at a time, however many dashboards ask at once.
const inFlight = new Map<string, Promise<number | null>>()
// Runs whose data gave no baseline (or could not be read), and when: every chart refresh would
// otherwise read all their shards again. Retried after RETRY_MS in case a blob came back.
const unavailable = new Map<string, number>()
const RETRY_MS = 10 * 60_000

/**
 * A run's unigram baseline in nats/token (the line the loss chart draws): the training
 * shards' token frequencies scored on the validation windows `evaluate` uses. It reads every
 * training shard, so it is computed on first request and stored in `runs.unigram_baseline`;
 * null when the run's data cannot give one (validation shorter than one window).
 */
export async function runUnigramBaseline (deps: { db: Kysely<Database>, blobs: BlobStore }, runId: string): Promise<number | null> {
  const row = await deps.db.selectFrom('runs').select(['spec', 'unigram_baseline']).where('id', '=', runId).executeTakeFirst()
  if (row === undefined) return null
  if (row.unigram_baseline !== null) return row.unigram_baseline
  // A run still waiting for its dataset's shards (runs/awaiting-data.ts) has nothing to count yet.
  if (row.spec.trainShards.length === 0) return null
  if (Date.now() - (unavailable.get(runId) ?? -Infinity) < RETRY_MS) return null
  let pending = inFlight.get(runId)
  if (pending === undefined) {
    pending = compute(deps, runId, row.spec)
      .then((baseline) => { if (baseline === null) unavailable.set(runId, Date.now()); return baseline })
      .catch((err: unknown) => { unavailable.set(runId, Date.now()); throw err })
      .finally(() => { inFlight.delete(runId) })
    inFlight.set(runId, pending)
  }
  return await pending
}

async function compute (deps: { db: Kysely<Database>, blobs: BlobStore }, runId: string, spec: StoredRunSpec): Promise<number | null> {
  const validation = decodeShard(await deps.blobs.get(spec.validationShard.sha256)).tokens
  if (validation.length < spec.recipe.seqLen + 1) return null
  // Shards agents fetch by URL are not here; without all the train counts there is no baseline.
  if (spec.trainShards.some((s) => s.url !== undefined)) return null
  const counts = new Float64Array(spec.vocabSize)
  for (const shard of spec.trainShards) addTokenCounts(counts, decodeShard(await deps.blobs.get(shard.sha256)).tokens)
  const baseline = unigramBaselineLoss(counts, validation, evaluationWindows(spec))
  if (!Number.isFinite(baseline)) return null
  await deps.db.updateTable('runs').set({ unigram_baseline: baseline }).where('id', '=', runId).execute()
  return baseline
}

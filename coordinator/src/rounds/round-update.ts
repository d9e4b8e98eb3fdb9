// What a node needs to rebuild a unit's base itself (protocol's roundUpdateSchema): the
// checkpoint the round that made the base was applied to, and that round's update: its accepted
// reports in the order they were folded, or its mean as the coordinator encoded and applied it.
import type { Kysely } from 'kysely'
import { MAX_CONTROL_MESSAGE_BYTES, allowedCodecs, encodedByteLength } from '@barnraise/protocol'
import type { AggregateCodec, BroadcastMode, CodecName, RoundUpdate } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import type { StoredRunSpec } from '../runs/runs.ts'

/**
 * The update that made checkpoint `base` (a unit's base) from the one before it, or undefined
 * when a node must download the base: the initial checkpoint, a report of that round is gone,
 * or the update is not worth sending (`worthSending`). In a run without overlap that round is
 * the one before the unit's; with overlap it is two before, applied to the checkpoint in between.
 */
export async function roundUpdate (db: Kysely<Database>, runId: string, base: string, spec: StoredRunSpec): Promise<RoundUpdate | undefined> {
  const previous = await db.selectFrom('rounds').select(['id', 'base_checkpoint', 'applied_to', 'update_blob'])
    .where('run_id', '=', runId).where('result_checkpoint', '=', base).where('status', '=', 'closed').executeTakeFirst()
  if (previous === undefined) return undefined
  // Rounds closed before `applied_to` existed were applied to their own base.
  const from = previous.applied_to ?? previous.base_checkpoint
  if (previous.update_blob !== null) {
    // Any kind: the mean of identical reports is byte for byte one of them (kind `report`).
    const blob = await db.selectFrom('blobs').select('size').where('sha256', '=', previous.update_blob).executeTakeFirst()
    if (blob === undefined) return undefined
    const update = { from, aggregate: { sha256: previous.update_blob, bytes: blob.size, codec: broadcastCodecOf(spec) }, outerLr: spec.recipe.outerLr, outerMomentum: spec.recipe.outerMomentum }
    return worthSending(update, spec.paramCount) ? update : undefined
  }
  const accepted = await db.selectFrom('assignments')
    .innerJoin('ledger', (j) => j.onRef('ledger.assignment_id', '=', 'assignments.id').on('ledger.outcome', '=', 'accepted'))
    .leftJoin('blobs', (j) => j.onRef('blobs.sha256', '=', 'assignments.report_blob').on('blobs.kind', '=', 'report'))
    .select(['assignments.report_blob', 'assignments.codec', 'ledger.tokens', 'blobs.size'])
    .where('assignments.round_id', '=', previous.id).where('assignments.status', '=', 'accepted')
    // The order the coordinator folded them in (report-intake commits the ledger row, then folds, under the run's lock).
    .orderBy('ledger.seq').execute()
  // A partial list would rebuild a different base.
  if (accepted.length === 0 || accepted.some((r) => r.report_blob === null || r.size === null)) return undefined
  // A round in several codecs goes out as its aggregate (round-engine); listed reports share one.
  const codecs = new Set(accepted.map((r) => r.codec ?? spec.codec))
  if (codecs.size !== 1) return undefined
  const update = {
    from,
    reports: accepted.map((r) => ({ sha256: r.report_blob!, tokens: r.tokens, bytes: r.size! })),
    codec: [...codecs][0]!,
    outerLr: spec.recipe.outerLr,
    outerMomentum: spec.recipe.outerMomentum
  }
  return worthSending(update, spec.paramCount) ? update : undefined
}

/**
 * The most of a unit's control message (MAX_CONTROL_MESSAGE_BYTES) its update may take; the rest
 * is the unit itself. At about 110 bytes a report that is some 450 reports.
 */
export const MAX_UPDATE_BYTES = MAX_CONTROL_MESSAGE_BYTES - 16 * 1024

/** Reports an update can list within MAX_UPDATE_BYTES (an entry is at most about 120 bytes of JSON). */
export const MAX_UPDATE_REPORTS = Math.floor(MAX_UPDATE_BYTES / 120)

/**
 * Whether a round with `reports` reports of `bytes` bytes in all will make an update worth
 * sending: asked before the reports are in (whether to offer the momentum, whether to keep the
 * reports at the close).
 */
export function updateWorthSending (reports: number, bytes: number, aggregate: AggregateCodec, paramCount: number): boolean {
  if (reports === 0) return false
  // An aggregate (int8: about a quarter of the F32 model) costs the same whatever the number of reports.
  if (sendsAggregate(reports, bytes, aggregate, paramCount)) return encodedByteLength(aggregate, paramCount) < 4 * paramCount
  return reports <= MAX_UPDATE_REPORTS && bytes < 4 * paramCount
}

/**
 * The codec whose aggregate a run's round means go out in: its smallest allowed codec (its only
 * one, in most runs), so a node moved to a smaller codec for its slow link never downloads a
 * larger mean than its own codec's.
 */
export function updateCodecOf (spec: { codec: CodecName, codecs?: readonly CodecName[] | undefined }): CodecName {
  // Sizes compared at a model's scale (topk's chunks make tiny vectors unrepresentative).
  const paramCount = 1 << 20
  return allowedCodecs(spec).reduce((a, b) => encodedByteLength(b, paramCount) < encodedByteLength(a, paramCount) ? b : a)
}

/**
 * The codec a round's mean goes out in: topk where the run's broadcast is sparse (with the
 * coordinator's error feedback, sparse-broadcast.ts); otherwise the run's own for dense codecs
 * (a run that chose fp16 keeps fp16 precision) and int8 for topk (the mean of many sparse
 * reports is no longer sparse).
 */
export function broadcastCodecOf (spec: { codec: CodecName, codecs?: readonly CodecName[] | undefined, broadcast?: BroadcastMode | undefined }): AggregateCodec {
  if (spec.broadcast === 'sparse') return 'topk'
  const codec = updateCodecOf(spec)
  return codec === 'topk' ? 'int8' : codec
}

/**
 * Whether a round's update goes out as its mean, encoded once by the coordinator in `aggregate`
 * (broadcastCodecOf; applied as encoded, so a node rebuilds the same bits), rather than as its
 * `reports` reports of `bytes` bytes in all: when that is fewer bytes (an int8 mean from two int8
 * reports on, or from about 31 topk ones; a topk mean from two topk reports on).
 */
export function sendsAggregate (reports: number, bytes: number, aggregate: AggregateCodec, paramCount: number): boolean {
  return reports > 0 && encodedByteLength(aggregate, paramCount) < bytes
}

/**
 * Whether nodes should rebuild the base from this update rather than download it: only when its
 * reports together are smaller than the model (F32, 4 bytes a parameter) and its list fits in a
 * work unit. With many nodes neither holds (1,000 int8 reports are 250× the model, and their
 * list alone is 107 KiB: bench/scale.bench.ts), so each node downloads the one base instead.
 */
export function worthSending (update: RoundUpdate, paramCount: number): boolean {
  const reportBytes = update.aggregate?.bytes ?? (update.reports ?? []).reduce((n, r) => n + r.bytes, 0)
  return reportBytes < 4 * paramCount && new TextEncoder().encode(JSON.stringify(update)).byteLength <= MAX_UPDATE_BYTES
}

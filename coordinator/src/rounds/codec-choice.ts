// Which codec each node's unit is encoded in, when a run allows several: the run's own for a
// node whose report uploads in a small share of its unit's time, a smaller one for a node whose
// link would hold the round (docs/codec-choice.md). The rate is the coordinator's own
// measurement of the node's report uploads, never a number the node reports.
import { encodedByteLength } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'

/**
 * Of a blocking round's time, the share a report's upload may take: the node idles while it
 * uploads, so this is utilization given away. Overlapped, the upload runs beside the next
 * unit's training and may take all of it (one upload is in flight at a time).
 */
export const BLOCKING_UPLOAD_SHARE = 0.1
export const OVERLAPPED_UPLOAD_SHARE = 0.9

/** What the choice needs to know of a node. */
export interface CodecChoiceInput {
  /** the codecs the run allows (allowedCodecs) and the one it prefers */
  allowed: readonly CodecName[]
  preferred: CodecName
  paramCount: number
  /** report bytes a second measured by the coordinator; undefined before its first report */
  uploadBytesPerSecond: number | undefined
  /** seconds the unit is expected to train (its steps × its measured seconds a step, else the round deadline) */
  unitSeconds: number
  overlapped: boolean
}

/**
 * The largest codec no larger than the preferred one whose report would upload within the
 * node's share of its unit time; the smallest allowed when none would. A node not measured yet
 * gets the preferred codec (its first report measures it).
 */
export function chooseCodec (o: CodecChoiceInput): CodecName {
  const rate = o.uploadBytesPerSecond
  if (rate === undefined || !Number.isFinite(rate) || rate <= 0) return o.preferred
  const size = (c: CodecName): number => encodedByteLength(c, o.paramCount)
  const ceiling = size(o.preferred)
  const candidates = o.allowed.filter((c) => size(c) <= ceiling).sort((a, b) => size(b) - size(a))
  if (candidates.length === 0) return o.preferred
  const budget = Math.max(0, o.unitSeconds) * (o.overlapped ? OVERLAPPED_UPLOAD_SHARE : BLOCKING_UPLOAD_SHARE)
  return candidates.find((c) => size(c) / rate <= budget) ?? candidates.at(-1)!
}

/** Uploads smaller than this say more about latency than bandwidth, and are not measured. */
export const UPLOAD_SAMPLE_MIN_BYTES = 64 * 1024

/**
 * The rate one report upload shows (bytes a second), or null when it says nothing about the
 * link: too small, or timed at zero. The coordinator keeps an average of these per node (½ on
 * the newest, so a changed link is followed within a few reports and one slow upload moves it
 * only half way: nodes/upload-rate.ts).
 */
export function uploadSample (bytes: number, seconds: number): number | null {
  if (!(bytes >= UPLOAD_SAMPLE_MIN_BYTES) || !(seconds > 0) || !Number.isFinite(seconds)) return null
  return bytes / seconds
}

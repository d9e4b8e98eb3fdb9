// Which of a round's reports are excluded before aggregation, and why: free riders (nothing
// or next to nothing trained), copiers (another report of the same round, near-exactly),
// replays (a report accepted in an earlier round), harmful updates (they raise the loss on a
// batch no node trained on, far below the round's typical score) and loss curves that do not
// match the delta. Every test is relative to the round's own population, so it needs no
// tuning per model size; each reason is a code and a sentence for the ledger row.
import { cosineSimilarity, deltaNorm } from './robust-aggregation.ts'
import { sketchDelta } from './delta-sketch.ts'
import type { DeltaSketch } from './delta-sketch.ts'

export interface ReportToScreen {
  id: string
  delta: Float32Array
  tokens: number
  /** The node's own last inner-loop loss, as it reported it. */
  claimedLoss?: number
}

export type ExclusionCode = 'ERR_NEAR_ZERO' | 'ERR_COPIED' | 'ERR_REPLAYED' | 'ERR_HARMFUL' | 'ERR_LOSS_MISMATCH'

export interface Exclusion { code: ExclusionCode, message: string }

export interface ScreeningOptions {
  /** A delta shorter than this share of the round's median norm trained (next to) nothing. */
  nearZeroRatio?: number
  /** Two reports of one round closer than this cosine are one report sent twice. */
  copyCosine?: number
  /** A report whose sketch is this close to an earlier round's accepted one is a replay. */
  replayCosine?: number
  /** Sketches of reports accepted in earlier rounds. */
  earlier?: Array<{ round: number, sketch: DeltaSketch }>
  /**
   * Held-out evaluation: `base` is the loss of the round's starting weights and `after(delta)`
   * the loss of `base − delta`, both on data no node trained on this round. Without it,
   * reports are not scored.
   */
  evaluate?: { base: number, after: (delta: Float32Array) => number }
  /** Robust z (in median absolute deviations) below the round's median score that excludes a report. */
  harmfulZ?: number
}

export interface Screening {
  excluded: Map<string, Exclusion>
  /** Loss removed on the held-out data, per report (when evaluated): positive helps. */
  scores: Map<string, number>
  /** Per report, for the next rounds' replay checks. */
  sketches: Map<string, DeltaSketch>
  medianNorm: number
}

function median (values: number[]): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Median and median absolute deviation. */
function robustSpread (values: number[]): { median: number, mad: number } {
  const m = median(values)
  return { median: m, mad: median(values.map((v) => Math.abs(v - m))) }
}

/** Screens one round's reports, in arrival order (of two copies, the later one is excluded). */
export function screenReports (reports: ReportToScreen[], options: ScreeningOptions = {}): Screening {
  const nearZeroRatio = options.nearZeroRatio ?? 0.05
  const copyCosine = options.copyCosine ?? 0.995
  const replayCosine = options.replayCosine ?? 0.98
  const harmfulZ = options.harmfulZ ?? 6
  const excluded = new Map<string, Exclusion>()
  const exclude = (id: string, code: ExclusionCode, message: string): void => { if (!excluded.has(id)) excluded.set(id, { code, message }) }

  const norms = reports.map((r) => deltaNorm(r.delta))
  const medianNorm = median(norms)
  reports.forEach((r, k) => {
    if (norms[k]! <= nearZeroRatio * medianNorm) {
      exclude(r.id, 'ERR_NEAR_ZERO', `the pseudo-gradient's norm ${norms[k]!.toExponential(2)} is under ${nearZeroRatio} of the round's median ${medianNorm.toExponential(2)}: it trained next to nothing`)
    }
  })

  const sketches = new Map(reports.map((r) => [r.id, sketchDelta(r.delta)]))
  for (let k = 0; k < reports.length; k++) {
    const r = reports[k]!
    if (excluded.has(r.id)) continue
    for (let j = 0; j < k; j++) {
      const earlier = reports[j]!
      if (excluded.has(earlier.id)) continue
      // The sketch screens; the exact cosine decides.
      if (cosineSimilarity(sketches.get(r.id)!, sketches.get(earlier.id)!) < copyCosine - 0.05) continue
      const cos = cosineSimilarity(r.delta, earlier.delta)
      if (cos >= copyCosine) {
        exclude(r.id, 'ERR_COPIED', `the pseudo-gradient matches another report of this round (cosine ${cos.toFixed(4)}) though it trained other data`)
        break
      }
    }
    if (excluded.has(r.id)) continue
    for (const e of options.earlier ?? []) {
      const cos = cosineSimilarity(sketches.get(r.id)!, e.sketch)
      if (cos >= replayCosine) {
        exclude(r.id, 'ERR_REPLAYED', `the pseudo-gradient repeats one accepted in round ${e.round} (sketch cosine ${cos.toFixed(3)})`)
        break
      }
    }
  }

  const scores = new Map<string, number>()
  if (options.evaluate !== undefined) {
    const { base, after } = options.evaluate
    const measured = new Map<string, number>()
    for (const r of reports) {
      const loss = after(r.delta)
      measured.set(r.id, loss)
      scores.set(r.id, Number.isFinite(loss) ? base - loss : -Infinity)
    }
    const candidates = reports.filter((r) => !excluded.has(r.id))
    const { median: typical, mad } = robustSpread(candidates.map((r) => scores.get(r.id)!).filter(Number.isFinite))
    // A floor on the spread, so a round of near-identical honest scores does not exclude its own tail.
    const spread = Math.max(mad, 0.05 * Math.abs(typical), 1e-4)
    for (const r of candidates) {
      const s = scores.get(r.id)!
      if (s < typical - harmfulZ * spread && s < 0.5 * typical) {
        exclude(r.id, 'ERR_HARMFUL', `on held-out data this update ${s < 0 ? `raises the loss by ${(-s).toFixed(4)}` : `lowers the loss by only ${s.toFixed(4)}`}; the round's reports typically lower it by ${typical.toFixed(4)}`)
      }
    }
    const gaps = candidates.filter((r) => r.claimedLoss !== undefined && !excluded.has(r.id)).map((r) => measured.get(r.id)! - r.claimedLoss!)
    const gap = robustSpread(gaps)
    for (const r of candidates) {
      if (r.claimedLoss === undefined || excluded.has(r.id)) continue
      const g = measured.get(r.id)! - r.claimedLoss
      if (g > gap.median + harmfulZ * Math.max(gap.mad, 0.02) + 0.1) {
        exclude(r.id, 'ERR_LOSS_MISMATCH', `the node reports a final loss of ${r.claimedLoss.toFixed(4)}, but its update leaves ${measured.get(r.id)!.toFixed(4)} on held-out data, ${(g - gap.median).toFixed(4)} more than the round's usual gap`)
      }
    }
  }
  return { excluded, scores, sketches, medianNorm }
}

// Which reports are excluded before aggregation, and why: free riders (nothing or next to
// nothing trained), outsized reports (scaled far past their peers), copiers (another report of the same round, near-exactly), replays (a
// report accepted in an earlier round), harmful updates (they raise the loss on data no node
// trained on, point uphill, or help far less than this round's accepted reports) and loss
// curves that do not match the delta. Reports are screened one at a time in arrival order, against what was accepted
// before them (this round and the recent past), so a coordinator can give each report its
// verdict when it arrives, and of two copies the later one is the copy. Every test is relative
// to that population, so it needs no tuning per model size; each reason is a code and a
// sentence for the ledger row.
import { cosineSimilarity, deltaNorm } from './robust-aggregation.ts'
import { sketchDelta } from './delta-sketch.ts'
import type { DeltaSketch } from './delta-sketch.ts'

export interface ReportToScreen {
  id: string
  /**
   * The work unit it answers, where a run hands one unit to two nodes (redundancy): such twins
   * train the same data to the same bytes, so they are never each other's copy. Unique otherwise.
   */
  unit?: string
  delta: Float32Array
  tokens: number
  /** The node's own last inner-loop loss, as it reported it. */
  claimedLoss?: number
}

export type ExclusionCode = 'ERR_NEAR_ZERO' | 'ERR_OUTSIZED' | 'ERR_UNRELATED' | 'ERR_COPIED' | 'ERR_REPLAYED' | 'ERR_HARMFUL' | 'ERR_LOSS_MISMATCH'

export interface Exclusion { code: ExclusionCode, message: string }

/**
 * Held-out losses for one report: of the round's base weights, of base − delta, and (when
 * measured) of base + delta: an honest update is downhill, so the other way is worse.
 */
export interface HeldOutLoss { base: number, after: number, reversed?: number }

export interface ScreeningThresholds {
  /** A delta shorter than this share of recent accepted reports' median norm trained (next to) nothing. */
  nearZeroRatio: number
  /** A delta longer than this multiple of recent accepted reports' median norm is outsized. */
  outsizedRatio: number
  /**
   * A report whose direction agrees with the previous round's accepted reports (the cosine of
   * its sketch with their mean) less than this is unrelated to the run's training: noise, or
   * pointing away from it. Honest reports from neighbouring rounds share much of their direction.
   */
  minAgreement: number
  /** Two reports of one round whose sketches are closer than this cosine are one report sent twice. */
  copyCosine: number
  /** A report whose sketch is this close to an earlier round's accepted one is a replay. */
  replayCosine: number
  /** Robust z (in median absolute deviations) below this round's median score that excludes a report. */
  harmfulZ: number
  /** An update whose reverse lowers the held-out loss more than it does, by this share of the improvement, points uphill. */
  uphillMargin: number
  /** How many recent accepted reports form the norm reference (scores and loss gaps are this round's only: they shrink as training goes). */
  window: number
  /** How many earlier-round sketches are kept for replay checks. */
  earlierKept: number
}

export const DEFAULT_SCREENING: ScreeningThresholds = {
  nearZeroRatio: 0.05,
  outsizedRatio: 10,
  minAgreement: 0.05,
  copyCosine: 0.995,
  replayCosine: 0.98,
  harmfulZ: 6,
  uphillMargin: 0.25,
  window: 48,
  earlierKept: 256
}

/** One report's verdict, with what was measured (kept for the ledger, the run page and the next checks). */
export interface ScreenVerdict {
  exclusion: Exclusion | null
  /** Loss removed on held-out data (positive helps); null when not evaluated. */
  score: number | null
  norm: number
  sketch: DeltaSketch
  /** after − claimed final loss; null without both. */
  lossGap: number | null
  /** The report's work unit, when given (ReportToScreen.unit). */
  unit?: string
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

/** Reference values need a few reports before they mean anything. */
const MIN_REFERENCE = 3

/**
 * The screening state of one run: sketches of this round's and earlier rounds' accepted
 * reports, and recent accepted reports' norms, scores and loss gaps. `check` gives a report's
 * verdict without changing anything; `admit` records a report that was accepted.
 */
export class ReportScreen {
  readonly #t: ScreeningThresholds
  #round: number | null = null
  #current: Array<{ sketch: DeltaSketch, unit: string | undefined }> = []
  /** Mean sketch of the previous round's accepted reports (or, before any, the held-out gradient's): the direction the run is going. */
  #direction: DeltaSketch | null = null
  #directionFrom: 'previous round' | 'gradient' = 'previous round'
  #earlier: Array<{ round: number, sketch: DeltaSketch }> = []
  #norms: number[] = []
  #scores: number[] = []
  #gaps: number[] = []

  constructor (thresholds: Partial<ScreeningThresholds> = {}) {
    this.#t = { ...DEFAULT_SCREENING, ...thresholds }
  }

  /**
   * A screen for the round after this one, leaving this one as it is: what `openRound` would
   * make of it, for a run whose rounds overlap (the next round opens while this one still takes
   * reports; each keeps its own screen). Reports this one accepts later reach the new one with
   * `rememberEarlier`.
   */
  fork (round: number): ReportScreen {
    const next = new ReportScreen(this.#t)
    next.#direction = this.#direction
    next.#directionFrom = this.#directionFrom
    next.#earlier = [...this.#earlier]
    next.#current = [...this.#current]
    next.#norms = [...this.#norms]
    next.#round = this.#round
    next.openRound(round)
    return next
  }

  /**
   * The run's direction is now what `closed`'s round accepted (it closed after this screen was
   * made from the round before it, as in an overlapped run); unchanged if it accepted nothing.
   */
  followDirection (closed: ReportScreen): void {
    const mean = closed.#currentMean()
    if (mean === null) return
    this.#direction = mean
    this.#directionFrom = 'previous round'
  }

  #currentMean (): DeltaSketch | null {
    if (this.#current.length === 0) return null
    const mean = new Float32Array(this.#current[0]!.sketch.length)
    for (const { sketch } of this.#current) for (let i = 0; i < mean.length; i++) mean[i]! += sketch[i]! / this.#current.length
    return mean
  }

  /** A new round starts: this round's accepted sketches become earlier ones. */
  openRound (round: number): void {
    const mean = this.#currentMean()
    if (mean !== null) {
      this.#direction = mean
      this.#directionFrom = 'previous round'
    }
    if (this.#round !== null) for (const { sketch } of this.#current) this.#earlier.push({ round: this.#round, sketch })
    this.#earlier = this.#earlier.slice(-this.#t.earlierKept)
    this.#current = []
    this.#scores = []
    this.#gaps = []
    this.#round = round
  }

  /**
   * Before any round has shown the way, the sketch of the loss gradient on held-out data stands
   * in for it: an honest pseudo-gradient (θ − θ_local) points along it, a sign-flipped one
   * against it. Ignored once a previous round's accepted reports give the direction.
   */
  orient (gradientSketch: DeltaSketch): void {
    if (this.#direction !== null) return
    this.#direction = gradientSketch
    this.#directionFrom = 'gradient'
  }

  /**
   * After a restart, from storage: sketches of reports accepted in earlier rounds (for replay
   * checks), and those of round `number − 1` give the direction as `openRound` would have.
   * Call after `openRound(number)`.
   */
  restore (earlier: Array<{ round: number, sketch: DeltaSketch }>): void {
    const previous = earlier.filter((e) => e.round === (this.#round ?? 0) - 1)
    if (previous.length > 0) {
      const mean = new Float32Array(previous[0]!.sketch.length)
      for (const e of previous) for (let i = 0; i < mean.length; i++) mean[i]! += e.sketch[i]! / previous.length
      this.#direction = mean
      this.#directionFrom = 'previous round'
    }
    for (const e of earlier) this.#earlier.push(e)
    this.#earlier = this.#earlier.slice(-this.#t.earlierKept)
  }

  /** Adds sketches of reports accepted in an earlier round (after a restart, from storage). */
  rememberEarlier (round: number, sketches: DeltaSketch[]): void {
    for (const sketch of sketches) this.#earlier.push({ round, sketch })
    this.#earlier = this.#earlier.slice(-this.#t.earlierKept)
  }

  /** The verdict on `report` given what was accepted before it; `heldOut` scores it when given. */
  check (report: ReportToScreen, heldOut?: HeldOutLoss): ScreenVerdict {
    const t = this.#t
    const norm = deltaNorm(report.delta)
    const sketch = sketchDelta(report.delta)
    const score = heldOut === undefined ? null : Number.isFinite(heldOut.after) ? heldOut.base - heldOut.after : -Infinity
    const lossGap = heldOut === undefined || report.claimedLoss === undefined || !Number.isFinite(heldOut.after) ? null : heldOut.after - report.claimedLoss
    const verdict = (exclusion: Exclusion | null): ScreenVerdict => ({ exclusion, score, norm, sketch, lossGap, ...(report.unit !== undefined ? { unit: report.unit } : {}) })

    if (this.#norms.length >= MIN_REFERENCE) {
      const typical = median(this.#norms)
      if (norm <= t.nearZeroRatio * typical) {
        return verdict({ code: 'ERR_NEAR_ZERO', message: `the pseudo-gradient's norm ${norm.toExponential(2)} is under ${t.nearZeroRatio} of accepted reports' median ${typical.toExponential(2)}: it trained next to nothing` })
      }
      if (norm > t.outsizedRatio * typical) {
        return verdict({ code: 'ERR_OUTSIZED', message: `the pseudo-gradient's norm ${norm.toExponential(2)} is over ${t.outsizedRatio}× accepted reports' median ${typical.toExponential(2)}` })
      }
    }
    if (this.#direction !== null) {
      const agreement = cosineSimilarity(sketch, this.#direction)
      if (agreement < t.minAgreement) {
        const reference = this.#directionFrom === 'gradient' ? 'the loss gradient on held-out data (the way downhill before any round has shown it)' : 'what the previous round\'s accepted reports trained'
        return verdict({ code: 'ERR_UNRELATED', message: `the pseudo-gradient's direction is unrelated to ${reference} (cosine ${agreement.toFixed(3)}, under ${t.minAgreement})` })
      }
    }
    for (const other of this.#current) {
      if (report.unit !== undefined && other.unit === report.unit) continue
      const cos = cosineSimilarity(sketch, other.sketch)
      if (cos >= t.copyCosine) return verdict({ code: 'ERR_COPIED', message: `the pseudo-gradient matches a report already accepted this round (cosine ${cos.toFixed(4)}) though it trained other data` })
    }
    for (const e of this.#earlier) {
      const cos = cosineSimilarity(sketch, e.sketch)
      if (cos >= t.replayCosine) return verdict({ code: 'ERR_REPLAYED', message: `the pseudo-gradient repeats one accepted in round ${e.round} (cosine ${cos.toFixed(3)})` })
    }
    if (score !== null && heldOut !== undefined) {
      // Early in training both directions can help (the first rounds learn much that is even in
      // the weights, through tied embeddings); a flipped update is one whose reverse helps clearly more.
      const helped = Math.abs(heldOut.base - Math.min(heldOut.after, heldOut.reversed ?? heldOut.after))
      if (heldOut.reversed !== undefined && !(heldOut.after - heldOut.reversed <= t.uphillMargin * helped + 1e-3 * Math.abs(heldOut.base))) {
        return verdict({ code: 'ERR_HARMFUL', message: `on held-out data this update points uphill: the loss is ${heldOut.after.toFixed(4)} with it and ${heldOut.reversed.toFixed(4)} going the other way` })
      }
      if (this.#scores.length >= MIN_REFERENCE) {
        const { median: typical, mad } = robustSpread(this.#scores)
        // A floor on the spread, so a run of near-identical scores does not exclude its own tail.
        const spread = Math.max(mad, 0.05 * Math.abs(typical), 1e-4)
        if (score < typical - t.harmfulZ * spread && score < 0.5 * typical) {
          return verdict({ code: 'ERR_HARMFUL', message: `on held-out data this update ${score < 0 ? `raises the loss by ${(-score).toFixed(4)}` : `lowers the loss by only ${score.toFixed(4)}`}; this round's accepted reports typically lower it by ${typical.toFixed(4)}` })
        }
      }
    }
    if (lossGap !== null && this.#gaps.length >= MIN_REFERENCE) {
      const gap = robustSpread(this.#gaps)
      if (lossGap > gap.median + t.harmfulZ * Math.max(gap.mad, 0.02) + 0.1) {
        return verdict({ code: 'ERR_LOSS_MISMATCH', message: `the node reports a final loss of ${report.claimedLoss!.toFixed(4)}, but its update leaves ${heldOut!.after.toFixed(4)} on held-out data, ${(lossGap - gap.median).toFixed(4)} more than accepted reports' usual gap` })
      }
    }
    return verdict(null)
  }

  /**
   * Drops the round's reference sketches of `unit`: a report admitted while it waited for its
   * twin, then refused with it (they disagreed, or its node was quarantined), must not steer the
   * next round's direction or the copy checks.
   */
  retract (unit: string): void {
    this.#current = this.#current.filter((c) => c.unit !== unit)
  }

  /** Records an accepted report's measurements as reference for the reports after it. */
  admit (verdict: ScreenVerdict): void {
    const keep = (list: number[], value: number | null): number[] => value === null || !Number.isFinite(value) ? list : [...list, value].slice(-this.#t.window)
    this.#current.push({ sketch: verdict.sketch, unit: verdict.unit })
    this.#norms = keep(this.#norms, verdict.norm)
    this.#scores = keep(this.#scores, verdict.score)
    this.#gaps = keep(this.#gaps, verdict.lossGap)
  }
}

export interface ScreeningOptions extends Partial<ScreeningThresholds> {
  /** Sketches of reports accepted in earlier rounds. */
  earlier?: Array<{ round: number, sketch: DeltaSketch }>
  /** Held-out evaluation: the loss of the base weights, of base − delta, and optionally of base + delta. */
  evaluate?: { base: number, after: (delta: Float32Array) => number, reversed?: (delta: Float32Array) => number }
}

export interface Screening {
  excluded: Map<string, Exclusion>
  /** Loss removed on the held-out data, per report (when evaluated): positive helps. */
  scores: Map<string, number>
  /** Per report, for the next rounds' replay checks. */
  sketches: Map<string, DeltaSketch>
}

/** Screens one round's reports in arrival order with a fresh screen (plus `earlier` sketches). */
export function screenReports (reports: ReportToScreen[], options: ScreeningOptions = {}): Screening {
  const screen = new ReportScreen(options)
  for (const e of options.earlier ?? []) screen.rememberEarlier(e.round, [e.sketch])
  screen.openRound(Math.max(0, ...(options.earlier ?? []).map((e) => e.round)) + 1)
  const excluded = new Map<string, Exclusion>()
  const scores = new Map<string, number>()
  const sketches = new Map<string, DeltaSketch>()
  for (const r of reports) {
    const e = options.evaluate
    const heldOut = e === undefined ? undefined : { base: e.base, after: e.after(r.delta), ...(e.reversed !== undefined ? { reversed: e.reversed(r.delta) } : {}) }
    const verdict = screen.check(r, heldOut)
    sketches.set(r.id, verdict.sketch)
    if (verdict.score !== null) scores.set(r.id, verdict.score)
    if (verdict.exclusion !== null) excluded.set(r.id, verdict.exclusion)
    else screen.admit(verdict)
  }
  return { excluded, scores, sketches }
}

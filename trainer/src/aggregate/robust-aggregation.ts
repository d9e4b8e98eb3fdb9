// How a round's pseudo-gradients become one update when some of them may be hostile. Each
// rule is token-weighted: a report's weight is the tokens it trained, and robustness is
// applied to that weighted population (a trimmed mean drops a share of the *weight* from each
// end, a median is the weighted median), so a node cannot outvote others by splitting its
// work, nor buy influence past the rule by claiming more tokens than its unit held (the
// coordinator caps claims at the assignment).

/** One report as the aggregation sees it. */
export interface Contribution {
  delta: Float32Array
  /** Tokens trained: the report's weight. */
  tokens: number
}

/**
 * `mean`: token-weighted mean (plain DiLoCo). `trimmed-mean`: per coordinate, drop `trim` of
 * the weight from each end, average the rest. `median`: per coordinate, the weighted median.
 * `centered-clip`: start from the weighted median and move towards each report by at most
 * `tau` (default: the median distance to it), `iterations` times (Karimireddy et al. 2021).
 */
export type AggregationRule =
  | { rule: 'mean' }
  | { rule: 'trimmed-mean', trim: number }
  | { rule: 'median' }
  | { rule: 'centered-clip', tau?: number, iterations?: number }

export interface AggregationOptions {
  /**
   * Scale every report down to at most this multiple of the round's median norm before the
   * rule runs (a ×100 report counts as a ×k one); unset: no clipping.
   */
  clipToMedianNorm?: number
}

export interface Aggregate {
  update: Float32Array
  /** Per contribution: the factor its delta was scaled by (1 when not clipped). */
  scales: number[]
  medianNorm: number
}

/** L2 norm in float64. */
export function deltaNorm (values: Float32Array): number {
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i]! * values[i]!
  return Math.sqrt(s)
}

/** Cosine similarity in float64; 0 when either vector is all zeros. */
export function cosineSimilarity (a: Float32Array, b: Float32Array): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!
    const y = b[i]!
    dot += x * y
    na += x * x
    nb += y * y
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb)
}

/** The weighted median of `values` (lower median at an exact half). */
function weightedMedian (values: number[], weights: number[]): number {
  const order = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!)
  const half = weights.reduce((s, w) => s + w, 0) / 2
  let acc = 0
  for (const i of order) {
    acc += weights[i]!
    if (acc >= half) return values[i]!
  }
  return values[order.at(-1)!]!
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function checkInputs (contributions: Contribution[], rule: AggregationRule): number {
  if (contributions.length === 0) throw new RangeError('nothing to aggregate')
  const n = contributions[0]!.delta.length
  for (const c of contributions) {
    if (c.delta.length !== n) throw new RangeError(`a delta has ${c.delta.length} values, another ${n}`)
    if (!(c.tokens > 0) || !Number.isFinite(c.tokens)) throw new RangeError(`a contribution's weight must be a positive number of tokens, not ${c.tokens}`)
  }
  if (rule.rule === 'trimmed-mean' && !(rule.trim >= 0 && rule.trim < 0.5)) throw new RangeError(`trim must be at least 0 and under 0.5, not ${rule.trim}`)
  return n
}

function weightedMean (deltas: Float32Array[], weights: number[], n: number): Float32Array {
  const out = new Float64Array(n)
  const total = weights.reduce((s, w) => s + w, 0)
  for (let k = 0; k < deltas.length; k++) {
    const d = deltas[k]!
    const w = weights[k]! / total
    for (let i = 0; i < n; i++) out[i]! += w * d[i]!
  }
  return Float32Array.from(out)
}

function trimmedMean (deltas: Float32Array[], weights: number[], n: number, trim: number): Float32Array {
  const out = new Float32Array(n)
  const m = deltas.length
  const total = weights.reduce((s, w) => s + w, 0)
  const cut = trim * total
  const order = new Array<number>(m)
  const column = new Float64Array(m)
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < m; k++) { column[k] = deltas[k]![i]!; order[k] = k }
    order.sort((a, b) => column[a]! - column[b]!)
    // Keep each report's weight that lies between `cut` and `total - cut` along the sorted line.
    let before = 0
    let sum = 0
    let kept = 0
    for (const k of order) {
      const w = weights[k]!
      const keep = Math.max(0, Math.min(before + w, total - cut) - Math.max(before, cut))
      sum += keep * column[k]!
      kept += keep
      before += w
    }
    out[i] = kept > 0 ? sum / kept : 0
  }
  return out
}

function coordinateMedian (deltas: Float32Array[], weights: number[], n: number): Float32Array {
  const out = new Float32Array(n)
  const column = new Array<number>(deltas.length)
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < deltas.length; k++) column[k] = deltas[k]![i]!
    out[i] = weightedMedian(column, weights)
  }
  return out
}

function centeredClip (deltas: Float32Array[], weights: number[], n: number, tau: number | undefined, iterations: number): Float32Array {
  const v = Float64Array.from(coordinateMedian(deltas, weights, n))
  const total = weights.reduce((s, w) => s + w, 0)
  const distance = (d: Float32Array): number => {
    let s = 0
    for (let i = 0; i < n; i++) { const x = d[i]! - v[i]!; s += x * x }
    return Math.sqrt(s)
  }
  const radius = tau ?? median(deltas.map(distance))
  for (let it = 0; it < iterations; it++) {
    const step = new Float64Array(n)
    for (let k = 0; k < deltas.length; k++) {
      const d = deltas[k]!
      const dist = distance(d)
      const scale = dist === 0 ? 0 : (weights[k]! / total) * Math.min(1, radius / dist)
      for (let i = 0; i < n; i++) step[i]! += scale * (d[i]! - v[i]!)
    }
    for (let i = 0; i < n; i++) v[i]! += step[i]!
  }
  return Float32Array.from(v)
}

/** One update from a round's contributions under `rule`; throws RangeError on mismatched or empty input. */
export function aggregate (contributions: Contribution[], rule: AggregationRule, options: AggregationOptions = {}): Aggregate {
  const n = checkInputs(contributions, rule)
  const norms = contributions.map((c) => deltaNorm(c.delta))
  const medianNorm = median(norms)
  const scales = norms.map((norm) =>
    options.clipToMedianNorm === undefined || norm === 0 ? 1 : Math.min(1, options.clipToMedianNorm * medianNorm / norm))
  const deltas = contributions.map((c, k) => {
    if (scales[k] === 1) return c.delta
    const scaled = new Float32Array(n)
    for (let i = 0; i < n; i++) scaled[i] = c.delta[i]! * scales[k]!
    return scaled
  })
  const weights = contributions.map((c) => c.tokens)
  let update: Float32Array
  switch (rule.rule) {
    case 'mean': update = weightedMean(deltas, weights, n); break
    case 'trimmed-mean': update = trimmedMean(deltas, weights, n, rule.trim); break
    case 'median': update = coordinateMedian(deltas, weights, n); break
    case 'centered-clip': update = centeredClip(deltas, weights, n, rule.tau, rule.iterations ?? 3); break
  }
  return { update, scales, medianNorm }
}

// Reading a coordinator's GET /metrics (Prometheus text format) for bench/scale.bench.ts.

/** One sample line: metric name, labels, value. */
export interface Sample { name: string, labels: Record<string, string>, value: number }

/** Parses the text exposition format (comments skipped; label values unescaped enough for ours). */
export function parseExposition (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1')
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

/** The value of `name` whose labels include `labels`, or undefined. */
export function valueOf (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}

/** A histogram's cumulative buckets (upper bound → count) for the series whose labels include `labels`. */
export function bucketsOf (samples: Sample[], name: string, labels: Record<string, string>): Array<{ le: number, count: number }> {
  return samples
    .filter((s) => s.name === `${name}_bucket` && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }))
    .sort((a, b) => a.le - b.le)
}

/**
 * The q-quantile of a histogram as Prometheus' histogram_quantile() estimates it: linear
 * within the bucket the rank falls in; the largest finite bound when it falls in +Inf.
 * NaN without observations.
 */
export function histogramQuantile (q: number, buckets: Array<{ le: number, count: number }>): number {
  const total = buckets.at(-1)?.count ?? 0
  if (total === 0) return NaN
  const rank = q * total
  let lower = 0
  let below = 0
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return lower
      return lower + (b.le - lower) * (b.count === below ? 0 : (rank - below) / (b.count - below))
    }
    lower = b.le
    below = b.count
  }
  return lower
}

/** Scrapes `url`'s /metrics. */
export async function scrape (baseUrl: string): Promise<Sample[]> {
  const res = await fetch(new URL('metrics', baseUrl), { signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`)
  return parseExposition(await res.text())
}

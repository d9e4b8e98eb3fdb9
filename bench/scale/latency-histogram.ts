// Client-side latencies of the simulated agents as log-spaced counts (2% wide), so an agent
// process sends a few hundred numbers at the end rather than every sample.

const STEP = Math.log(1.02)
/** Bucket i holds latencies in [1.02^(i−1), 1.02^i) µs. */
const bucketOf = (ms: number): number => Math.max(0, Math.ceil(Math.log(Math.max(ms * 1000, 1)) / STEP))
const upperMs = (bucket: number): number => Math.exp(bucket * STEP) / 1000

/** Counts per bucket index. */
export type LatencyCounts = Record<number, number>

export function addLatency (counts: LatencyCounts, ms: number): void {
  const b = bucketOf(ms)
  counts[b] = (counts[b] ?? 0) + 1
}

export function mergeLatencies (into: LatencyCounts, from: LatencyCounts): void {
  for (const [b, n] of Object.entries(from)) into[Number(b)] = (into[Number(b)] ?? 0) + n
}

export function latencyCount (counts: LatencyCounts): number {
  return Object.values(counts).reduce((a, b) => a + b, 0)
}

/** The q-quantile in milliseconds (the upper edge of its bucket: at most 2% high); NaN when empty. */
export function latencyQuantile (counts: LatencyCounts, q: number): number {
  const total = latencyCount(counts)
  if (total === 0) return NaN
  const rank = Math.ceil(q * total)
  let seen = 0
  for (const b of Object.keys(counts).map(Number).sort((x, y) => x - y)) {
    seen += counts[b]!
    if (seen >= rank) return upperMs(b)
  }
  return NaN
}

// How often a node with nothing to do asks again for work.

/**
 * How long a waiting node sleeps before asking again: a second for a few nodes, longer as more
 * are online (5 ms a node, at most 10 s), so idle polls stay near 200 a second however many
 * wait. At 1,000 agents 1 s polls were most of the coordinator's work (bench/scale.bench.ts).
 */
export function waitPollMs (online: number): number {
  return Math.min(10_000, Math.max(1000, Math.round(online * 5)))
}

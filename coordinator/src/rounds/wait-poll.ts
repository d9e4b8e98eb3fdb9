// How often a node with nothing to do asks again for work, and how long its request is held.
import { REQUEST_TIMEOUT_MS } from '@barnraise/protocol'

/**
 * How long a waiting node sleeps before asking again: a second for a few nodes, longer as more
 * are online (5 ms a node, at most 10 s), so idle polls stay near 200 a second however many
 * wait. At 1,000 agents 1 s polls were most of the coordinator's work (bench/scale.bench.ts).
 */
export function waitPollMs (online: number): number {
  return Math.min(10_000, Math.max(1000, Math.round(online * 5)))
}

/**
 * The longest a work request is held: well inside the agent's wait for a reply (REQUEST_TIMEOUT_MS),
 * since a loaded coordinator may take seconds more to answer (work p99 9.9 s at 1,000 agents
 * with 5 s holds, bench/scale.bench.ts).
 */
export const MAX_HOLD_MS = REQUEST_TIMEOUT_MS - 6_000

/**
 * How long the coordinator holds a work request it has nothing for, waking it the moment a round
 * opens (a long poll): the poll interval, so idle requests stay near 200 a second, at most
 * MAX_HOLD_MS. A node learns of its unit when the round opens, not up to a poll later.
 */
export function holdMs (online: number): number {
  return Math.min(MAX_HOLD_MS, waitPollMs(online))
}

/** When a node that was held `held` ms asks again: at once, unless the poll interval is longer than a hold (the rest of it, so idle requests stay near 200 a second). */
export function retryAfterHoldMs (online: number, held: number): number {
  return Math.max(1, waitPollMs(online) - held)
}

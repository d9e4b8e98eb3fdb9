// Work a node did not finish (its unit expired, was refused or declined) goes out again before
// fresh tokens: which pool unit a node takes, and the part of it that fits the node.
import type { TokenRange } from '@barnraise/protocol'

/** A unit back in its run's pool: its ranges, its inner steps, and how many of those went out again already. */
export interface PoolUnit { ranges: TokenRange[], steps: number, handed: number }

/**
 * The pool unit a node sized `size` inner steps takes, as an index into `pool` (oldest first), or
 * -1 for none: one whose steps still to hand out are the node's size, else the oldest (cut to
 * the node's size by requeuedPart when larger), so the pool always drains.
 */
export function pickFromPool (pool: PoolUnit[], size: number): number {
  const same = pool.findIndex((p) => p.steps - p.handed === size)
  return same >= 0 ? same : pool.length > 0 ? 0 : -1
}

/**
 * The part of a pool unit a node sized `size` steps trains: all that is left of it when that is
 * no more than the node's size (a unit never handed out in part keeps its ranges as they were),
 * else the next `size` steps' share of its training windows. A unit is never handed out larger
 * than its node's size: a fast node's expired unit would otherwise go whole to a slower node
 * (missing its deadline again, round after round) or to a node no agent can read it for.
 * `steps` is the part's inner steps; `handed` the pool unit's steps handed out after it.
 *
 * A unit's tokens are cut into windows of `window` tokens (seqLen + 1) as an agent lays them
 * out (never across a range); each part takes its steps' share of them, whole windows only,
 * so together the parts cover every window of the unit once.
 */
export function requeuedPart (unit: PoolUnit, size: number, window: number): { ranges: TokenRange[], steps: number, handed: number } {
  const left = unit.steps - unit.handed
  const steps = Math.max(1, Math.min(size, left))
  const handed = Math.min(unit.steps, unit.handed + steps)
  if (unit.handed === 0 && handed === unit.steps) return { ranges: unit.ranges, steps, handed }
  const windows = unit.ranges.map((r) => Math.max(0, Math.floor((r.end - r.start) / window)))
  const total = windows.reduce((a, b) => a + b, 0)
  if (total === 0) return { ranges: unit.ranges, steps, handed }
  // Its share of the windows, in proportion to its steps; at least one window.
  const from = Math.min(total - 1, Math.floor(total * unit.handed / unit.steps))
  const to = handed === unit.steps ? total : Math.max(from + 1, Math.floor(total * handed / unit.steps))
  const ranges: TokenRange[] = []
  let first = 0
  for (const [i, r] of unit.ranges.entries()) {
    const n = windows[i]!
    const a = Math.max(from, first)
    const b = Math.min(to, first + n)
    if (a < b) ranges.push({ ...r, start: r.start + (a - first) * window, end: r.start + (b - first) * window })
    first += n
    if (first >= to) break
  }
  return { ranges, steps, handed }
}

/**
 * The tokens a unit may be credited for: its ranges' tokens, or its steps' windows where those
 * are more. A part cut from a requeued unit holds whole windows only, and one that crossed a
 * shard boundary is a window short of its steps (the agent wraps around and trains them all);
 * crediting it by its ranges alone refused the honest report, and the part went round again.
 */
export function unitTokenBudget (rangeTokens: number, steps: number, batchSize: number, window: number): number {
  return Math.max(rangeTokens, steps * batchSize * window)
}

/** The most losses a report's curve carries: longer curves are sampled down (`sampleLossCurve`). */
export const MAX_LOSS_CURVE_POINTS = 1000

/**
 * A unit's per-step losses as a report carries them: all of them up to MAX_LOSS_CURVE_POINTS,
 * else that many evenly spaced steps, the first and the last included (the last is the loss the
 * coordinator reads). One loss a step would not fit the report header's frame past about 30,000
 * steps, and nobody reads a curve at that resolution.
 */
export function sampleLossCurve (losses: readonly number[], max = MAX_LOSS_CURVE_POINTS): number[] {
  if (losses.length <= max) return [...losses]
  if (max < 2) return losses.length === 0 ? [] : [losses.at(-1)!]
  const out: number[] = []
  for (let k = 0; k < max; k++) out.push(losses[Math.round(k * (losses.length - 1) / (max - 1))]!)
  return out
}

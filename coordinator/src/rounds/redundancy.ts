// Redundancy sampling (BOINC's homogeneous redundancy): a share of each round's units is handed
// to a second node with the same ranges, seed and recipe. Where both nodes trained with the same
// executor on the same class of device, the two deltas must agree up to what floating-point and
// the codec allow; on different classes they must at least point the same way. A pair that does
// not agree is refused, both reports, and flagged for review, since the coordinator cannot tell
// which of the two lied.
import type { CodecName, HardwareProfile } from '@barnraise/protocol'

/** Index pairs [original, twin] into a round's node list. */
export type TwinPairs = Array<[number, number]>

/** A small deterministic hash, so which units are doubled changes every round and nodes cannot tell. */
function mix (a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35)
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d)
  return (h ^ (h >>> 15)) >>> 0
}

/**
 * Which of a round's `count` units double another: floor(fraction × count) twins, each paired
 * with a distinct original, chosen afresh each round. A round of one node has none.
 */
export function pickTwins (count: number, fraction: number, round: number): TwinPairs {
  const twins = Math.min(Math.floor(fraction * count), Math.floor(count / 2))
  if (twins <= 0) return []
  const order = Array.from({ length: count }, (_, i) => i).sort((a, b) => mix(round, a) - mix(round, b) || a - b)
  const pairs: TwinPairs = []
  for (let k = 0; k < twins; k++) pairs.push([order[k]!, order[count - 1 - k]!])
  return pairs
}

/** The self-test's bound on one step's relative error against float64 (node-agent selftest). */
export const SELFTEST_REL_ERROR = 1e-4
/**
 * How much inner AdamW steps may grow a difference: Adam divides by the root of the second
 * moment, so coordinates with tiny gradients move by about the learning rate either way.
 */
const STEP_GROWTH = 10
/**
 * A codec's rounding of two nearly equal deltas can differ by one quantum where they straddle a
 * step. topk is listed for completeness only: each node adds its own error-feedback residual, so
 * twins never agree, and the run spec refuses redundancy with it.
 */
const CODEC_SLACK: Record<CodecName, number> = { fp32: 0, fp16: 2e-3, int8: 5e-2, topk: 1 }

/**
 * The relative L2 distance two honest twins may show: the self-test's per-step error bound grown
 * over the inner steps, plus the codec's rounding. Identical hardware and software give 0.
 */
export function twinTolerance (innerSteps: number, codec: CodecName): number {
  return SELFTEST_REL_ERROR * STEP_GROWTH * innerSteps + CODEC_SLACK[codec]
}

/**
 * The relative L2 distance twins trained on different classes of device may show (a bf16 GPU
 * beside a float32 CPU, or any pair a node made "different" by what it claims: the class is the
 * node's own word). Their deltas need not agree closely, but they must point the same way:
 * ‖a − b‖ ≤ max(‖a‖, ‖b‖) holds exactly when cos(a, b) ≥ min(‖a‖, ‖b‖) / (2 max(‖a‖, ‖b‖)),
 * at least 0.5 for deltas of equal size. A delta unrelated to the training (random, of any size,
 * being nearly orthogonal to the honest one in millions of dimensions) or against it lands above.
 */
export const CROSS_CLASS_TOLERANCE = 1

/**
 * The least ratio of the smaller twin's norm to the larger's across device classes. Pointing the
 * same way alone lets a node that trained nothing pass with a small multiple of any vector that
 * leans toward the training (the last published update, say); honest twins trained the same
 * steps on the same data and land at about the same size.
 */
export const CROSS_CLASS_NORM_RATIO = 0.5

/**
 * Two twins' deltas compared in one pass, in float64: `distance` = ‖a − b‖ / max(‖a‖, ‖b‖)
 * (0 for two zero vectors) and `sizes` = min(‖a‖, ‖b‖) / max(‖a‖, ‖b‖) (1 for two zero vectors).
 */
export function compareDeltas (a: Float32Array, b: Float32Array): { distance: number, sizes: number } {
  let diff = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!
    diff += d * d
    na += a[i]! * a[i]!
    nb += b[i]! * b[i]!
  }
  const big = Math.max(na, nb)
  return big === 0 ? { distance: 0, sizes: 1 } : { distance: Math.sqrt(diff / big), sizes: Math.sqrt(Math.min(na, nb) / big) }
}

/**
 * The class of device a report was trained on, for deciding whether two twins must agree:
 * the executor, and for torch the GPU model (CUDA) or CPU model (its kernels differ by CPU).
 * The TypeScript trainer's float32 arithmetic is the same on every machine.
 */
export function deviceClass (executor: string | null | undefined, hardware: HardwareProfile): string | null {
  switch (executor) {
    case 'typescript': return 'typescript'
    case 'torch-cuda': return `torch-cuda:${hardware.gpus[0]?.name ?? 'unknown'}`
    case 'torch-cpu': return `torch-cpu:${hardware.cpuModel}`
    default: return null
  }
}

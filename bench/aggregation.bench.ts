// The coordinator's per-report aggregation path, in GB/s of fp32 pseudo-gradient, against a
// plain memory copy of the same bytes measured here and now: the path before (decode the whole
// report, take its norm, fold the decoded copy) and now (scan the payload for bad bytes,
// non-finite values and the norm, then fold it chunk by chunk from the payload: no decoded copy).
// Rates are in dense fp32 values a report stands for, also for the sparse topk codec.
//   bin/node bench/aggregation.bench.ts     (or: pnpm bench aggregation)
import { CODEC_NAMES, decodePseudoGradient, encodePseudoGradient, scanPseudoGradient } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import { RoundAccumulator, l2Norm } from '@barnraise/coordinator'

const N = 4_000_000
const REPORTS = 8
const delta = new Float32Array(N)
for (let i = 0; i < N; i++) delta[i] = Math.sin(i) * 1e-3

/** Fastest of a few runs, in seconds. */
function best (fn: () => void, repeats = 3): number {
  let min = Infinity
  for (let r = 0; r < repeats; r++) {
    const t = performance.now()
    fn()
    min = Math.min(min, (performance.now() - t) / 1000)
  }
  return min
}

const dst = new Float32Array(N)
const copyGBs = REPORTS * N * 4 / best(() => { for (let r = 0; r < REPORTS; r++) dst.set(delta) }) / 1e9
const gbs = (seconds: number): number => REPORTS * N * 4 / seconds / 1e9
process.stdout.write(`aggregation of ${REPORTS} reports × ${N.toLocaleString('en-US')} values (GB/s of fp32 pseudo-gradient); memcpy ${copyGBs.toFixed(2)} GB/s\n`)
process.stdout.write('codec   decode + norm + fold          scan + fold from the payload   speed-up\n')
const now: Record<string, number> = {}
for (const codec of [...CODEC_NAMES].reverse() as CodecName[]) {
  const payload = encodePseudoGradient(codec, delta)
  // A round's sum is made once per round, not per report: outside the timing.
  const accBefore = new RoundAccumulator('bench', N)
  const before = gbs(best(() => {
    const acc = accBefore
    for (let r = 0; r < REPORTS; r++) {
      const decoded = decodePseudoGradient(codec, payload, N)
      if (l2Norm(decoded) > 1e9) throw new Error('norm')
      acc.fold(decoded, 1000, undefined)
    }
  }))
  const accAfter = new RoundAccumulator('bench', N)
  const after = gbs(best(() => {
    const acc = accAfter
    for (let r = 0; r < REPORTS; r++) {
      if (scanPseudoGradient(codec, payload, N).norm > 1e9) throw new Error('norm')
      acc.foldEncoded(codec, payload, 1000, undefined)
    }
  }))
  now[codec] = after / copyGBs
  process.stdout.write(`${codec.padEnd(7)} ${before.toFixed(2).padStart(6)} GB/s (${(before / copyGBs).toFixed(3)}× memcpy)   ${after.toFixed(2).padStart(6)} GB/s (${(after / copyGBs).toFixed(3)}× memcpy)   ${(after / before).toFixed(1)}×\n`)
}
// GB/s counts the dense fp32 values a report stands for: topk reads 0.032 bytes for each, so it
// folds far more values a second than memcpy copies.
process.stdout.write(`aggregation: int8 ${now.int8!.toFixed(2)}× memcpy, sparse ${now.topk!.toFixed(2)}× memcpy (topk), fp16 ${now.fp16!.toFixed(2)}×, fp32 ${now.fp32!.toFixed(2)}× (scan + fold from the payload)\n`)

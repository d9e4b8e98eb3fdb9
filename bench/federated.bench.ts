// Federated training on the wire and in the coordinator, fp32 against int8 (and fp16), in one run:
//   bin/node bench/federated.bench.ts
// 1. bytes on the wire per round, 2. validation loss after the same simulated DiLoCo rounds.
// (Aggregation throughput is bench/aggregation.bench.ts.)
import { decodePseudoGradient, encodePseudoGradient, encodedByteLength } from '@barnraise/protocol'
import type { CodecName } from '@barnraise/protocol'
import {
  AdamW, BatchSampler, NesterovSGD, clipGradNorm, countParams, createParamSet, demoCorpusShards, initParams,
  learningRateAt, lossAndGrad, presetConfig, validationLoss
} from '@barnraise/trainer'

const PRESET = 'small'
const WORKERS = 2
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4)
const INNER_STEPS = 10
const BATCH = 8
const SEQ = 64
const CODECS: CodecName[] = ['fp32', 'fp16', 'int8']

const config = presetConfig(PRESET)
const n = countParams(config)
const shards = await demoCorpusShards()
const evalOpts = { batches: 4, batchSize: BATCH, seqLen: SEQ }

process.stdout.write(`model ${PRESET}: ${n.toLocaleString('en-US')} parameters; ${WORKERS} workers × ${INNER_STEPS} inner steps × batch ${BATCH} × seq ${SEQ}; ${ROUNDS} rounds\n\n`)

// 1. Wire bytes.
process.stdout.write('bytes on the wire per round (payload of every worker)\n')
const fp32Bytes = encodedByteLength('fp32', n) * WORKERS
for (const codec of CODECS) {
  const bytes = encodedByteLength(codec, n) * WORKERS
  process.stdout.write(`  ${codec.padEnd(5)} ${(bytes / 1024).toFixed(1).padStart(9)} KiB   ${(fp32Bytes / bytes).toFixed(2)}× smaller than fp32\n`)
}

// 2. Loss after the same rounds, each codec from the same seed and the same data.
function simulate (codec: CodecName): { loss: number, seconds: number } {
  const started = performance.now()
  const theta = initParams(config, 7)
  const outer = new NesterovSGD(n, { lr: 0.7, momentum: 0.9 })
  const workers = Array.from({ length: WORKERS }, (_, w) => ({
    params: createParamSet(config),
    grads: createParamSet(config),
    adam: new AdamW(n, { lr: 3e-3, beta1: 0.9, beta2: 0.95, weightDecay: 0.01 }),
    sampler: new BatchSampler(shards.train.map((s) => ({ tokens: s.tokens })), { batchSize: BATCH, seqLen: SEQ, seed: 100 + w })
  }))
  let batchIndex = 0
  for (let round = 0; round < ROUNDS; round++) {
    const sum = new Float32Array(n)
    for (const w of workers) {
      w.params.flat.set(theta.flat)
      for (let s = 0; s < INNER_STEPS; s++) {
        const { loss } = lossAndGrad(w.params, w.sampler.batchAt(batchIndex + s), BATCH, SEQ, w.grads)
        if (!Number.isFinite(loss)) throw new Error('diverged')
        clipGradNorm(w.grads.flat, 1)
        w.adam.step(w.params.flat, w.grads.flat, learningRateAt(round * INNER_STEPS + s, { peakLr: 3e-3, warmupSteps: 5, totalSteps: ROUNDS * INNER_STEPS, minLr: 3e-4 }))
      }
      const delta = new Float32Array(n)
      for (let i = 0; i < n; i++) delta[i] = theta.flat[i]! - w.params.flat[i]!
      const received = decodePseudoGradient(codec, encodePseudoGradient(codec, delta), n)
      for (let i = 0; i < n; i++) sum[i]! += received[i]! / WORKERS
    }
    batchIndex += INNER_STEPS
    outer.step(theta.flat, sum)
  }
  return { loss: validationLoss(theta, shards.validation.tokens, evalOpts), seconds: (performance.now() - started) / 1000 }
}

const initial = validationLoss(initParams(config, 7), shards.validation.tokens, evalOpts)
process.stdout.write(`\nvalidation loss after ${ROUNDS} rounds (initial ${initial.toFixed(4)})\n`)
const losses = new Map<CodecName, number>()
for (const codec of ['fp32', 'int8'] as CodecName[]) {
  const r = simulate(codec)
  losses.set(codec, r.loss)
  process.stdout.write(`  ${codec.padEnd(5)} ${r.loss.toFixed(4)}   (${r.seconds.toFixed(1)} s)\n`)
}
process.stdout.write(`  int8 − fp32: ${(losses.get('int8')! - losses.get('fp32')!).toFixed(4)} nats\n`)

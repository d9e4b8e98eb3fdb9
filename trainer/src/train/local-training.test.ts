import { test } from 'vitest'
import assert from 'node:assert/strict'
import { parseLlamaConfig } from '@barnraise/protocol'
import { BatchSampler } from '../data/batch-sampler.ts'
import { encodeBytes } from '../data/byte-tokenizer.ts'
import { evaluateLoss } from '../model/llama.ts'
import { initParams } from '../model/params.ts'
import { AdamW } from '../optim/adamw.ts'
import { GradientPool } from './gradient-pool.ts'
import { runLocalTraining } from './local-training.ts'
import type { LocalTrainingProgress } from './local-training.ts'

const config = parseLlamaConfig({ vocab_size: 256, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, tie_word_embeddings: true, max_position_embeddings: 64 })
const text = 'the quick brown fox jumps over the lazy dog. '.repeat(40)
const tokens = encodeBytes(text)

test('inner steps drive the loss down on a repetitive text, reporting every step', async () => {
  const params = initParams(config, 1)
  const sampler = new BatchSampler([{ tokens }], { batchSize: 4, seqLen: 24, seed: 3 })
  const optimizer = new AdamW(params.flat.length, { lr: 1e-2 })
  const seen: LocalTrainingProgress[] = []
  const before = evaluateLoss(params, sampler.batchAt(999), 4, 24)
  const result = await runLocalTraining({
    params, optimizer, steps: 40, batchSize: 4, seqLen: 24,
    batches: (s) => sampler.batchAt(s),
    schedule: { peakLr: 1e-2, warmupSteps: 5, totalSteps: 40 },
    gradClip: 1,
    onProgress: (p) => seen.push(p)
  })
  assert.equal(result.lossCurve.length, 40)
  assert.equal(result.tokens, 40 * 4 * 24)
  assert.equal(result.skippedSteps, 0)
  assert.deepEqual(seen.map((p) => p.step), Array.from({ length: 40 }, (_, i) => i + 1))
  assert.ok(seen.every((p) => p.tokensPerSecond > 0 && p.gradNorm > 0))
  assert.ok(Math.abs(seen[0].lr - 2e-3) < 1e-12, `warmup lr ${seen[0].lr}`)
  assert.equal(optimizer.stepCount, 40)
  const after = evaluateLoss(params, sampler.batchAt(999), 4, 24)
  assert.ok(after < before - 1, `held-out batch loss ${before} → ${after}`)
  assert.ok(result.lossCurve[39] < result.lossCurve[0] - 1)
})

test('a second call continues the schedule from the optimizer step count', async () => {
  const params = initParams(config, 2)
  const sampler = new BatchSampler([{ tokens }], { batchSize: 2, seqLen: 16, seed: 1 })
  const optimizer = new AdamW(params.flat.length, { lr: 1e-2 })
  const lrs: number[] = []
  const run = async (): Promise<unknown> => await runLocalTraining({
    params, optimizer, steps: 3, batchSize: 2, seqLen: 16, batches: (s) => sampler.batchAt(s),
    schedule: { peakLr: 1e-2, warmupSteps: 6, totalSteps: 100 }, gradClip: 1, onProgress: (p) => lrs.push(p.lr)
  })
  await run()
  await run()
  assert.deepEqual(lrs.map((x) => Math.round(x * 1e6) / 1e6), [1, 2, 3, 4, 5, 6].map((k) => Math.round(k / 6 * 1e-2 * 1e6) / 1e6))
  // An explicit offset (the coordinator's count of the run's inner steps) wins over the optimizer's.
  lrs.length = 0
  await runLocalTraining({
    params, optimizer, steps: 2, batchSize: 2, seqLen: 16, batches: (s) => sampler.batchAt(s),
    schedule: { peakLr: 1e-2, warmupSteps: 6, totalSteps: 100 }, scheduleOffset: 1, gradClip: 1, onProgress: (p) => lrs.push(p.lr)
  })
  assert.deepEqual(lrs.map((x) => Math.round(x * 1e6) / 1e6), [2, 3].map((k) => Math.round(k / 6 * 1e-2 * 1e6) / 1e6))
})

test('a batch that poisons the gradient is skipped without touching the weights; abort stops between steps', async () => {
  const params = initParams(config, 3)
  // An infinite norm gain makes loss and gradient non-finite.
  params.tensors.get('model.norm.weight')!.data[0] = Infinity
  const before = params.flat.slice()
  const optimizer = new AdamW(params.flat.length, { lr: 1e-2 })
  const batch = new Int32Array(2 * 9).fill(65)
  const result = await runLocalTraining({
    params, optimizer, steps: 2, batchSize: 2, seqLen: 8, batches: () => batch,
    schedule: { peakLr: 1e-2, warmupSteps: 0, totalSteps: 10 }, gradClip: 1
  })
  assert.equal(result.skippedSteps, 2)
  assert.deepEqual(params.flat, before)
  assert.equal(optimizer.stepCount, 0)

  const controller = new AbortController()
  const healthy = initParams(config, 4)
  await assert.rejects(runLocalTraining({
    params: healthy, optimizer: new AdamW(healthy.flat.length, { lr: 1e-3 }), steps: 50, batchSize: 2, seqLen: 8, batches: () => batch,
    schedule: { peakLr: 1e-3, warmupSteps: 0, totalSteps: 50 }, gradClip: 1,
    onProgress: (p) => { if (p.step === 2) controller.abort(new Error('stop')) },
    signal: controller.signal
  }), /stop/)
})

test('with a gradient pool the run follows the single-threaded one', async () => {
  const run = async (pool?: GradientPool): Promise<number[]> => {
    const params = initParams(config, 5)
    const sampler = new BatchSampler([{ tokens }], { batchSize: 3, seqLen: 16, seed: 5 })
    const result = await runLocalTraining({
      params, optimizer: new AdamW(params.flat.length, { lr: 1e-2 }), steps: 4, batchSize: 3, seqLen: 16,
      batches: (s) => sampler.batchAt(s), schedule: { peakLr: 1e-2, warmupSteps: 1, totalSteps: 4 }, gradClip: 1, pool
    })
    return result.lossCurve
  }
  const pool = await GradientPool.start(config, 2)
  try {
    const single = await run()
    const shared = await run(pool)
    for (let i = 0; i < single.length; i++) assert.ok(Math.abs(single[i] - shared[i]) < 1e-4, `step ${i}: ${single[i]} vs ${shared[i]}`)
  } finally {
    await pool.close()
  }
})

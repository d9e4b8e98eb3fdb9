// A work unit that did not come from a coordinator: for measuring an executor's throughput
// (`barnraise-agent info`, `join --executor auto`), for the parity tests and the benchmark.
import { randomUUID } from 'node:crypto'
import type { InnerRecipe, LlamaConfig, WorkUnit } from '@barnraise/protocol'
import type { BatchSource } from './executor.ts'

/** A unit of `config` with the given recipe (defaults: DiLoCo's usual inner hyperparameters). */
export function syntheticUnit (config: LlamaConfig, recipe: Partial<InnerRecipe> & Pick<InnerRecipe, 'innerSteps' | 'batchSize' | 'seqLen'>, schedule: { scheduleOffset?: number, totalInnerSteps?: number } = {}): WorkUnit {
  return {
    assignmentId: randomUUID(),
    runId: randomUUID(),
    runName: 'synthetic',
    round: 1,
    baseCheckpoint: '0'.repeat(64),
    modelConfig: { ...config },
    ranges: [{ shard: '0'.repeat(64), start: 0, end: 1 }],
    shardVocabSize: config.vocab_size,
    recipe: { lr: 3e-3, warmupSteps: 5, weightDecay: 0.01, beta1: 0.9, beta2: 0.95, gradClip: 1, seed: 1, ...recipe },
    codec: 'fp32',
    deadline: new Date(Date.now() + 3_600_000).toISOString(),
    scheduleOffset: schedule.scheduleOffset ?? 0,
    totalInnerSteps: schedule.totalInnerSteps ?? Math.max(recipe.innerSteps, 1000)
  }
}

/** Reproducible uniform token batches: the same (seed, step) always gives the same tokens. */
export function randomBatches (seed: number, vocab: number, batch: number, seqLen: number): BatchSource {
  return (step) => {
    let state = (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca6b)) >>> 0
    const out = new Int32Array(batch * (seqLen + 1))
    for (let i = 0; i < out.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      out[i] = (state >>> 8) % vocab
    }
    return out
  }
}

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { countParams, presetConfig } from '@barnraise/trainer'
import type { StoredRunSpec } from './runs.ts'
import { INLINE_EVAL_FLOPS, INLINE_SCORE_FLOPS, NODE_SCORING_MAX_FLOPS, NODE_TORCH_SCORING_MAX_FLOPS, NODE_TORCH_SCORING_MEMORY_BYTES, SCORING_MAX_PARAMS, claimedScoringMemory, errorFeedbackDecayOf, evaluationFlops, nodeCanScore, plannedRounds, runIsDone, scorer, scoringFlops, storedLoss, torchCanScore, torchScoringBytes, typescriptCanScore } from './run-plan.ts'

function spec (goal: { rounds?: number, tokenTarget?: number }): StoredRunSpec {
  return { ...goal, minNodes: 2, recipe: { innerSteps: 10, batchSize: 4, seqLen: 32 } } as unknown as StoredRunSpec
}

test('a run is done at its round count or its token target, whichever it names', () => {
  assert.equal(runIsDone(spec({ rounds: 3 }), { rounds: 2, tokens: 1e9 }), false)
  assert.equal(runIsDone(spec({ rounds: 3 }), { rounds: 3, tokens: 0 }), true)
  assert.equal(runIsDone(spec({ tokenTarget: 5000 }), { rounds: 99, tokens: 4999 }), false)
  assert.equal(runIsDone(spec({ tokenTarget: 5000 }), { rounds: 1, tokens: 5000 }), true)
})

test('the schedule spans the run\'s rounds, or its token target at minNodes units per round', () => {
  assert.equal(plannedRounds(spec({ rounds: 7 })), 7)
  // 2 nodes × 10 steps × 4 × 32 = 2560 tokens a round.
  assert.equal(plannedRounds(spec({ tokenTarget: 2560 * 3 + 1 })), 4)
  assert.equal(plannedRounds(spec({ tokenTarget: 1 })), 1)
})

test('a loss that is not a finite number is stored as null', () => {
  assert.equal(storedLoss(2.5), 2.5)
  assert.equal(storedLoss(Number.NaN), null)
  assert.equal(storedLoss(Number.POSITIVE_INFINITY), null)
})

test('a run stored before the error-feedback decay existed carries all of each residual; a newer one its own share', () => {
  assert.equal(errorFeedbackDecayOf(spec({ rounds: 3 })), 1)
  const decayed = { ...spec({ rounds: 3 }), recipe: { innerSteps: 10, batchSize: 4, seqLen: 32, errorFeedbackDecay: 0.7 } } as unknown as StoredRunSpec
  assert.equal(errorFeedbackDecayOf(decayed), 0.7)
})

test('forward-pass work goes where it costs what that place can spend: scoring and validation by FLOPs, not parameters alone', () => {
  const sized = (paramCount: number, seqLen: number, batchSize = 4, evalBatches = 4): StoredRunSpec =>
    ({ paramCount, evalBatches, minNodes: 1, recipe: { innerSteps: 10, batchSize, seqLen } } as unknown as StoredRunSpec)
  // A preset, its positions stretched where the windows are longer (a custom config may do that).
  const withModel = (preset: string, seqLen: number, batchSize = 4): StoredRunSpec => {
    const config = presetConfig(preset)
    const modelConfig = { ...config, max_position_embeddings: Math.max(seqLen, config.max_position_embeddings) }
    return { ...sized(countParams(modelConfig), seqLen, batchSize), modelConfig } as unknown as StoredRunSpec
  }
  const score = (spec: StoredRunSpec): string => scorer(spec, SCORING_MAX_PARAMS, INLINE_SCORE_FLOPS)
  // The demo's small model at seq 64: 8 windows × 64 tokens × 3 passes × (2 × 198,208 parameters + attention's 4 · 4 layers · 4 heads · 16 · 64).
  assert.equal(scoringFlops(withModel('small', 64)), 8 * 64 * 3 * (2 * 198_208 + 4 * 4 * 4 * 16 * 64))
  assert.equal(score(withModel('small', 64)), 'coordinator')
  // Under --score-max-params, but 2,048-token windows: seconds of event loop a report. Nodes score it.
  assert.equal(score(withModel('tiny', 2048)), 'nodes')
  assert.equal(score(withModel('small', 256)), 'nodes', 'its attention takes it past the event loop\'s budget')
  assert.equal(score(withModel('medium', 256, 8)), 'nodes')
  // A 125M model at 2,048 tokens: hours for any TypeScript scorer, seconds for a GPU's torch
  // executor: nodes score it, only those that train with torch (nodeCanScore).
  assert.equal(score(withModel('125m', 2048, 8)), 'nodes')
  assert.ok(scoringFlops(withModel('125m', 2048, 8)) > NODE_SCORING_MAX_FLOPS)
  assert.ok(!typescriptCanScore(withModel('125m', 2048, 8)) && torchCanScore(withModel('125m', 2048, 8)))
  // What TypeScript scorers refuse goes to torch scorers alone: a model past their 50M
  // parameters, T² attention past 1 TFLOP, or a task needing more than half of an 8 GiB machine
  // (small's 8,192-token windows, two of them: 0.4 TFLOP but 8 GiB of attention; torch holds one
  // layer's at a time).
  for (const [preset, seqLen, batch] of [['large', 64, 4], ['small', 8192, 4], ['small', 8192, 1]] as const) {
    const s = withModel(preset, seqLen, batch)
    assert.equal(score(s), 'nodes', `${preset} at ${seqLen}`)
    assert.ok(!typescriptCanScore(s) && torchCanScore(s), `${preset} at ${seqLen}: torch scorers only`)
  }
  assert.ok(scoringFlops(withModel('small', 8192, 1)) <= NODE_SCORING_MAX_FLOPS)
  // What torch scorers refuse too is asked of nobody: more than half of an 80 GB GPU (small's
  // 65,536-token windows: 3 × 4 heads × 65,536² floats of attention a pass), or more work than
  // NODE_TORCH_SCORING_MAX_FLOPS (the 1B model's 16,384-token windows, eight of them).
  assert.ok(scoringFlops(withModel('small', 65_536, 1)) <= NODE_TORCH_SCORING_MAX_FLOPS)
  assert.equal(score(withModel('small', 65_536, 1)), 'none')
  assert.ok(scoringFlops(withModel('1b', 16_384, 8)) > NODE_TORCH_SCORING_MAX_FLOPS)
  assert.equal(score(withModel('1b', 16_384, 8)), 'none')
  // The 1B model at 2,048 tokens is within both: about 120 TFLOP and 20 GiB of a GPU.
  assert.equal(score(withModel('1b', 2048, 8)), 'nodes')
  // --score-max-params 0: nodes score every screened report they can.
  assert.equal(scorer(withModel('small', 64), 0, INLINE_SCORE_FLOPS), 'nodes')
  // Validation: the demo's windows on the event loop, a 125m run's on the worker thread.
  assert.ok(evaluationFlops(withModel('small', 64)) <= INLINE_EVAL_FLOPS)
  const c125 = presetConfig('125m')
  const perToken = 2 * countParams(c125) + 4 * c125.num_hidden_layers * c125.num_attention_heads * c125.head_dim * 2048
  assert.equal(evaluationFlops(withModel('125m', 2048, 8)), 4 * 8 * 2048 * perToken, 'four windows of eight rows, attention counted')
  assert.ok(evaluationFlops(withModel('125m', 2048, 8)) > INLINE_EVAL_FLOPS)
  // Long windows of a small model: the weights alone fit the budget, their attention does not.
  const long = withModel('tiny', 1024, 1)
  assert.ok(2 * long.paramCount * 4 * 1024 <= INLINE_EVAL_FLOPS && evaluationFlops(long) > INLINE_EVAL_FLOPS, 'tiny at 1,024 tokens: 0.9 GFLOP of weights, 3 GFLOP with attention')
})

test('which nodes may score a run\'s reports: any node within the TypeScript limits, past them only nodes naming a torch executor whose claimed memory holds the task', () => {
  const withModel = (preset: string, seqLen: number, batchSize: number): StoredRunSpec => {
    const config = presetConfig(preset)
    const modelConfig = { ...config, max_position_embeddings: Math.max(seqLen, config.max_position_embeddings) }
    return { modelConfig, paramCount: countParams(modelConfig), evalBatches: 4, minNodes: 1, recipe: { innerSteps: 10, batchSize, seqLen } } as unknown as StoredRunSpec
  }
  const gib = 2 ** 30
  const gpu = (memoryMiB: number): { name: string, memoryMiB: number } => ({ name: 'GPU', memoryMiB })
  const hardware = (memoryBytes: number, gpus: Array<{ name: string, memoryMiB: number }> = []): unknown => ({ hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 8, memoryBytes, gpus })
  // The demo's model: anyone, whatever it claims (the TypeScript forward pass takes it).
  const small = withModel('small', 64, 4)
  assert.ok(typescriptCanScore(small))
  for (const executor of [undefined, 'typescript', 'torch-cpu', 'torch-cuda'] as const) assert.ok(nodeCanScore(small, { executor, hardware: {} }), String(executor))
  // 125M at 2,048 tokens: torch nodes only, and only where their memory holds it.
  const big = withModel('125m', 2048, 8)
  const cuda = torchScoringBytes(big, 'torch-cuda')
  assert.ok(cuda > 2 * gib && cuda < 8 * gib, `${cuda} bytes on a GPU`)
  assert.ok(torchScoringBytes(big, 'torch-cpu') > cuda, 'on a CPU the agent\'s copies share the host')
  assert.equal(nodeCanScore(big, { executor: undefined, hardware: hardware(512 * gib, [gpu(81_559)]) }), false, 'an older agent names no executor')
  assert.equal(nodeCanScore(big, { executor: 'typescript', hardware: hardware(512 * gib, [gpu(81_559)]) }), false)
  assert.equal(nodeCanScore(big, { executor: 'torch-cuda', hardware: hardware(8 * gib, [gpu(81_559)]) }), true, 'an H100')
  assert.equal(nodeCanScore(big, { executor: 'torch-cuda', hardware: hardware(512 * gib, [gpu(4096)]) }), false, 'a 4 GB GPU: half of it is too little')
  assert.equal(nodeCanScore(big, { executor: 'torch-cuda', hardware: hardware(512 * gib, [gpu(81_559), gpu(4096)]) }), false, 'the smallest GPU counts: the one it evaluates on is not named')
  assert.equal(nodeCanScore(big, { executor: 'torch-cuda', hardware: hardware(512 * gib) }), false, 'torch-cuda with no GPU listed')
  assert.equal(nodeCanScore(big, { executor: 'torch-cpu', hardware: hardware(64 * gib) }), true)
  assert.equal(nodeCanScore(big, { executor: 'torch-cpu', hardware: hardware(8 * gib, [gpu(81_559)]) }), false, 'torch-cpu is sized by the host, not its GPUs')
  // The share is the agent's: exactly SCORING_MEMORY_SHARE of the claim holds the task, a byte less does not.
  const exact = Math.ceil(2 * torchScoringBytes(big, 'torch-cpu'))
  assert.equal(nodeCanScore(big, { executor: 'torch-cpu', hardware: hardware(exact) }), true)
  assert.equal(nodeCanScore(big, { executor: 'torch-cpu', hardware: hardware(exact - 2) }), false)
  // Profiles from tests or older rows that lack the fields give no memory: such nodes score small tasks only.
  for (const bad of [null, {}, 'x', { memoryBytes: -1 }, { gpus: [{ memoryMiB: 'many' }] }]) {
    assert.equal(claimedScoringMemory({ executor: 'torch-cuda', hardware: bad }), 0, JSON.stringify(bad))
    assert.equal(nodeCanScore(big, { executor: 'torch-cpu', hardware: bad }), false, JSON.stringify(bad))
  }
  // Past the torch limits nobody may, whatever it claims.
  const huge = withModel('small', 65_536, 1)
  assert.ok(!torchCanScore(huge))
  assert.equal(nodeCanScore(huge, { executor: 'torch-cuda', hardware: hardware(2 ** 50, [gpu(2 ** 30)]) }), false)
  assert.ok(torchScoringBytes(huge, 'torch-cuda') > NODE_TORCH_SCORING_MEMORY_BYTES / 2)
})

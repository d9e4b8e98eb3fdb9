/*
 * The coordinator asks nodes to score a run's reports only where agents would take the task:
 * both count the task's cost with the trainer's cost.ts and the coordinator's limits derive from
 * the agent's. A sweep over models, window lengths and batch sizes, each run as the coordinator
 * decides it (scorer, nodeCanScore) and as an agent with default limits answers the task it
 * would be handed: with the TypeScript forward pass on a machine of the memory the coordinator
 * plans for (scoringRefusal), or with the torch executor on the device its claims describe
 * (torchScoringRefusal, its speed left out: that is the agent's own, the coordinator cannot know it).
 */
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { countParams, presetConfig } from '@barnraise/trainer'
import { INLINE_SCORE_FLOPS, NODE_SCORING_MEMORY_BYTES, NODE_TORCH_SCORING_MEMORY_BYTES, SCORING_MAX_PARAMS, nodeCanScore, scorer, scoringTaskShape, typescriptCanScore } from '../coordinator/src/runs/run-plan.ts'
import type { StoredRunSpec } from '../coordinator/src/runs/runs.ts'
import { scoringRefusal, torchScoringRefusal } from '../node-agent/src/scoring-task.ts'

test('the coordinator never asks nodes to score what an agent with default limits refuses', () => {
  const outcomes = { coordinator: 0, nodes: 0, none: 0, torchOnly: 0 }
  const gib = 2 ** 30
  const deadline = new Date(Date.now() + 3_600_000).toISOString()
  for (const preset of ['tiny', 'small', 'medium', 'large', '125m', '1b']) {
    for (const seqLen of [16, 64, 256, 1024, 2048, 4096, 8192]) {
      for (const batchSize of [1, 2, 4, 8, 64]) {
        // Positions stretched to the windows, as a custom config may do.
        const base = presetConfig(preset)
        const modelConfig = { ...base, max_position_embeddings: Math.max(seqLen, base.max_position_embeddings) }
        const spec = { modelConfig, paramCount: countParams(modelConfig), evalBatches: 4, minNodes: 1, recipe: { innerSteps: 10, batchSize, seqLen } } as unknown as StoredRunSpec
        // The task's shape as RunCache.scoringWindowsBlob hands it to NodeScoring.taskFor.
        const task = { modelConfig, ...scoringTaskShape(spec), deadline }
        // --score-max-params 0 as well: then every report the coordinator would score goes to nodes or nobody.
        for (const scoreMaxParams of [SCORING_MAX_PARAMS, 0]) {
          const who = scorer(spec, scoreMaxParams, INLINE_SCORE_FLOPS)
          outcomes[who]++
          if (who !== 'nodes') continue
          const where = `${preset} at seqLen ${seqLen}, batch ${batchSize}`
          if (typescriptCanScore(spec)) {
            // Any node may be handed it: the TypeScript forward pass takes it on the smallest machine planned for.
            const refusal = scoringRefusal(task, NODE_SCORING_MEMORY_BYTES)
            assert.equal(refusal, undefined, `${where}: the coordinator asks any node, an agent answers "${refusal}"`)
            continue
          }
          outcomes.torchOnly++
          // Only torch nodes whose claims hold it: at least the largest GPU planned for, and an agent on each device it picks takes it.
          const gpu = (bytes: number): unknown => ({ memoryBytes: 16 * gib, gpus: [{ name: 'GPU', memoryMiB: Math.floor(bytes / 2 ** 20) }] })
          assert.ok(nodeCanScore(spec, { executor: 'torch-cuda', hardware: gpu(NODE_TORCH_SCORING_MEMORY_BYTES) }), `${where}: no GPU planned for can score it`)
          for (const bytes of [8, 16, 24, 40, 48, 80, 141].map((g) => g * gib)) {
            for (const executor of ['torch-cuda', 'torch-cpu'] as const) {
              const claim = executor === 'torch-cuda' ? gpu(bytes) : { memoryBytes: bytes, gpus: [] }
              if (!nodeCanScore(spec, { executor, hardware: claim })) continue
              const refusal = torchScoringRefusal(task, { executor, totalBytes: Math.floor(bytes / 2 ** 20) * 2 ** 20, freeBytes: bytes, flopsPerSecond: 1e15 })
              assert.equal(refusal, undefined, `${where}: the coordinator asks a ${executor} node of ${bytes / gib} GiB, its agent answers "${refusal}"`)
            }
          }
        }
      }
    }
  }
  // Not a vacuous sweep: every answer occurs, nodes by either executor included.
  assert.ok(outcomes.coordinator > 0 && outcomes.nodes > outcomes.torchOnly && outcomes.torchOnly > 0 && outcomes.none > 0, JSON.stringify(outcomes))
})

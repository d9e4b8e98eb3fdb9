/*
 * The coordinator asks nodes to score a run's reports only where agents would take the task:
 * both count the task's cost with the trainer's cost.ts and the coordinator's limits derive from
 * the agent's. A sweep over models, window lengths and batch sizes, each run as the coordinator
 * decides it (scorer) and as an agent with default limits answers the task it would be handed
 * (scoringRefusal, on a machine of the memory the coordinator plans for).
 */
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { countParams, presetConfig } from '@barnraise/trainer'
import { INLINE_SCORE_FLOPS, NODE_SCORING_MEMORY_BYTES, SCORING_MAX_PARAMS, scorer, scoringTaskShape } from '../coordinator/src/runs/run-plan.ts'
import type { StoredRunSpec } from '../coordinator/src/runs/runs.ts'
import { scoringRefusal } from '../node-agent/src/scoring-task.ts'

test('the coordinator never asks nodes to score what an agent with default limits refuses', () => {
  const outcomes = { coordinator: 0, nodes: 0, none: 0 }
  for (const preset of ['tiny', 'small', 'medium', 'large', '125m']) {
    for (const seqLen of [16, 64, 256, 1024, 2048, 4096, 8192]) {
      for (const batchSize of [1, 2, 4, 8, 64]) {
        // Positions stretched to the windows, as a custom config may do.
        const base = presetConfig(preset)
        const modelConfig = { ...base, max_position_embeddings: Math.max(seqLen, base.max_position_embeddings) }
        const spec = { modelConfig, paramCount: countParams(modelConfig), evalBatches: 4, minNodes: 1, recipe: { innerSteps: 10, batchSize, seqLen } } as unknown as StoredRunSpec
        // The task's shape as RunCache.scoringWindowsBlob hands it to NodeScoring.taskFor.
        const task = { modelConfig, ...scoringTaskShape(spec) }
        // --score-max-params 0 as well: then every report the coordinator would score goes to nodes or nobody.
        for (const scoreMaxParams of [SCORING_MAX_PARAMS, 0]) {
          const who = scorer(spec, scoreMaxParams, INLINE_SCORE_FLOPS)
          outcomes[who]++
          if (who !== 'nodes') continue
          const refusal = scoringRefusal(task, NODE_SCORING_MEMORY_BYTES)
          assert.equal(refusal, undefined, `${preset} at seqLen ${seqLen}, batch ${batchSize}: the coordinator asks nodes, an agent answers "${refusal}"`)
        }
      }
    }
  }
  // Not a vacuous sweep: every answer occurs, nodes included.
  assert.ok(outcomes.coordinator > 0 && outcomes.nodes > 0 && outcomes.none > 0, JSON.stringify(outcomes))
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { parseLlamaConfig } from '@barnraise/protocol'
import { countParams } from './params.ts'
import { presetConfig } from './presets.ts'
import { workspaceFor } from './workspace.ts'
import { forwardFlopsPerToken, forwardPassBytes, scoringTaskBytes, scoringTaskFlops, trainingFlopsPerToken } from './cost.ts'
import { allocatedBytes } from '../../../test/support/allocated-bytes.ts'

test('a forward pass costs 2 FLOPs a parameter a token plus attention\'s T² share; training three times that; scoring three passes', () => {
  const small = presetConfig('small')
  // 4 layers × 4 heads × head_dim 16.
  assert.equal(forwardFlopsPerToken(small, 64), 2 * 198_208 + 4 * 4 * 4 * 16 * 64)
  assert.equal(trainingFlopsPerToken(small, 64), 3 * forwardFlopsPerToken(small, 64))
  assert.equal(scoringTaskFlops(small, 8, 64), 3 * 8 * 64 * forwardFlopsPerToken(small, 64))
  // Attention makes a token dearer the longer its window: twice the windows' length, more than twice the work.
  assert.ok(scoringTaskFlops(small, 1, 2048) > 2 * scoringTaskFlops(small, 1, 1024))
})

test('forwardPassBytes is an upper bound on what an evaluation workspace allocates, and scoring adds three weight vectors', () => {
  const shapes = [
    { config: presetConfig('tiny'), batch: 2, seqLen: 16 },
    { config: parseLlamaConfig({ vocab_size: 40, hidden_size: 48, intermediate_size: 100, num_hidden_layers: 3, num_attention_heads: 6, num_key_value_heads: 2, tie_word_embeddings: false }), batch: 3, seqLen: 24 },
    { config: presetConfig('small'), batch: 1, seqLen: 200 }
  ]
  for (const { config, batch, seqLen } of shapes) {
    const actual = allocatedBytes(workspaceFor(config, batch, seqLen, false))
    const bound = forwardPassBytes(config, batch, seqLen)
    assert.ok(bound >= actual, `bound ${bound} is below the ${actual} bytes allocated for batch ${batch} × seqLen ${seqLen}`)
    assert.equal(scoringTaskBytes(config, batch, seqLen), 3 * 4 * countParams(config) + bound)
  }
})

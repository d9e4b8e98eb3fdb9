import { test } from 'vitest'
import assert from 'node:assert/strict'
import { parseLlamaConfig } from '@barnraise/protocol'
import { presetConfig } from './presets.ts'
import { trainingAttentionBytes, trainingWorkspaceBytes, workspaceFor } from './workspace.ts'
import { allocatedBytes } from '../../../test/support/allocated-bytes.ts'

test('trainingWorkspaceBytes covers what a training workspace actually allocates, for several shapes', () => {
  const shapes = [
    // vocab wider than the MLP, tied embeddings
    { config: presetConfig('tiny'), batch: 2, seqLen: 16 },
    // MLP wider than the vocabulary, grouped-query attention, untied, odd head count
    { config: parseLlamaConfig({ vocab_size: 40, hidden_size: 48, intermediate_size: 100, num_hidden_layers: 3, num_attention_heads: 6, num_key_value_heads: 2, tie_word_embeddings: false }), batch: 3, seqLen: 24 },
    // attention-dominated: long sequence, one row
    { config: presetConfig('small'), batch: 1, seqLen: 200 }
  ]
  for (const { config, batch, seqLen } of shapes) {
    const actual = allocatedBytes(workspaceFor(config, batch, seqLen, true))
    const estimate = trainingWorkspaceBytes(config, batch, seqLen)
    assert.ok(estimate >= actual, `estimate ${estimate} is below the ${actual} bytes allocated for batch ${batch} × seqLen ${seqLen}`)
    // Not wildly above either: a buffer dropped from the workspace should be dropped here too.
    assert.ok(estimate <= actual * 1.01, `estimate ${estimate} is far above the ${actual} bytes allocated`)
    assert.ok(trainingAttentionBytes(config, batch, seqLen) < estimate)
  }
})

test('the attention share grows with seqLen squared', () => {
  const config = { ...presetConfig('tiny'), max_position_embeddings: 65536 }
  const at1k = trainingAttentionBytes(config, 1, 1024)
  assert.equal(trainingAttentionBytes(config, 1, 2048), 4 * at1k)
  // 8192 × batch 64 of a 2-layer, 4-head model: 2·64·4·8192² floats, about 64 GiB.
  assert.ok(trainingWorkspaceBytes(config, 64, 8192) > 64 * 1024 ** 3)
})

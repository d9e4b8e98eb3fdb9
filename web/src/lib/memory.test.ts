import { test } from 'vitest'
import assert from 'node:assert/strict'
import { estimateNodeMemory } from './memory.ts'

test('node memory: 16 bytes a parameter, activations per token and layer, logits and their gradient', () => {
  // 1M parameters, hidden 64, 4 layers, vocab 256; batch 8 × seq 128 = 1024 tokens.
  const m = estimateNodeMemory(1_000_000, { hidden_size: 64, num_hidden_layers: 4, vocab_size: 256 }, { batchSize: 8, seqLen: 128 })
  assert.equal(m.state, 16_000_000)
  assert.equal(m.activations, 1024 * 64 * 4 * 24 * 4)
  assert.equal(m.logits, 1024 * 256 * 2 * 4)
  assert.equal(m.total, 16_000_000 + 25_165_824 + 2_097_152)
})

test('a config missing sizes (a custom one being typed) counts only what it knows', () => {
  const m = estimateNodeMemory(10, { hidden_size: 'x' }, { batchSize: -1, seqLen: 128 })
  assert.deepEqual(m, { state: 160, activations: 0, logits: 0, total: 160 })
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { countParams, presetConfig, storedCheckpointBytes, writeMomentum } from '@barnraise/trainer'
import { momentumByteLength, momentumMaxBytes, storedCheckpointByteLength } from './blob-sizes.ts'

test('a base\'s and a momentum\'s sizes are known from the model alone: those of the bytes the coordinator stores', () => {
  for (const name of ['tiny', 'small', 'medium']) {
    const config = presetConfig(name)
    const n = countParams(config)
    assert.equal(storedCheckpointByteLength(config), storedCheckpointBytes(config, new Float32Array(n)).byteLength, name)
    assert.equal(momentumByteLength(n), writeMomentum(new Float32Array(n)).byteLength, name)
    assert.ok(momentumMaxBytes(n) >= momentumByteLength(n) && momentumMaxBytes(n) <= 4 * n + 8 + 4096, name)
  }
  // Untied embeddings add lm_head; a longer vocabulary widens the digits of the header's offsets.
  const untied = { ...presetConfig('small'), tie_word_embeddings: false, vocab_size: 50_257 }
  assert.equal(storedCheckpointByteLength(untied), storedCheckpointBytes(untied, new Float32Array(countParams(untied))).byteLength)
})

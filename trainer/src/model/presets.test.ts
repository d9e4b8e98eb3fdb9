import { test } from 'vitest'
import assert from 'node:assert/strict'
import { parseLlamaConfig } from '@barnraise/protocol'
import { ModelError } from './model-error.ts'
import { countParams } from './params.ts'
import { gpuModelPresets, modelPresets, presetConfig } from './presets.ts'

test('every preset is a valid byte-vocabulary Llama config, growing in size', () => {
  let previous = 0
  for (const name of ['tiny', 'small', 'medium', 'large']) {
    const config = presetConfig(name)
    assert.deepEqual(parseLlamaConfig(config), config)
    assert.equal(config.vocab_size, 256)
    assert.ok(countParams(config) > previous, name)
    previous = countParams(config)
  }
  assert.deepEqual(Object.keys(modelPresets), ['tiny', 'small', 'medium', 'large'])
})

test('presetConfig hands out copies and names the known presets when asked for another', () => {
  const a = presetConfig('small')
  a.hidden_size = 1
  assert.notEqual(presetConfig('small').hidden_size, 1)
  assert.throws(() => presetConfig('huge'), (e: unknown) => e instanceof ModelError && e.code === 'ERR_UNKNOWN_PRESET' && /tiny, small, medium, large/.test(e.message))
  assert.throws(() => presetConfig('toString'), ModelError)
})

test('GPU-sized presets: about 125M, 350M and 1B parameters, byte vocabulary, reachable by name', () => {
  const sizes: Record<string, [number, number]> = { '125m': [110e6, 140e6], '350m': [320e6, 380e6], '1b': [0.95e9, 1.15e9] }
  assert.deepEqual(Object.keys(gpuModelPresets), Object.keys(sizes))
  for (const [name, [lo, hi]] of Object.entries(sizes)) {
    const config = presetConfig(name)
    assert.deepEqual(parseLlamaConfig(config), config)
    assert.equal(config.vocab_size, 256)
    const n = countParams(config)
    assert.ok(n > lo && n < hi, `${name}: ${n}`)
  }
})

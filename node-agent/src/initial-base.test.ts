import { test } from 'vitest'
import assert from 'node:assert/strict'
import { initParams, paramSetFromSafetensors, presetConfig, sha256Hex, storedCheckpointBytes } from '@barnraise/trainer'
import { makeInitialBase } from './initial-base.ts'

const config = presetConfig('tiny')
const stored = storedCheckpointBytes(config, initParams(config, 5).flat)

test('the model made from the run\'s seed is the stored round-0 checkpoint, byte for byte', async () => {
  const made = await makeInitialBase(config, 5, sha256Hex(stored))
  assert.ok(made.made)
  assert.deepEqual(made.bytes, stored)
  assert.deepEqual(paramSetFromSafetensors(config, made.bytes).flat, initParams(config, 5).flat)
})

test('a seed that does not make the base is refused with both hashes named', async () => {
  const made = await makeInitialBase(config, 6, sha256Hex(stored))
  assert.equal(made.made, false)
  assert.match(made.made ? '' : made.reason, new RegExp(`^the model made from seed 6 hashes to [0-9a-f]{12}, not the base ${sha256Hex(stored).slice(0, 12)}$`))
})

test('making it stops when asked', async () => {
  await assert.rejects(makeInitialBase(presetConfig('medium'), 5, sha256Hex(stored), AbortSignal.timeout(50)), { name: 'TimeoutError' })
})

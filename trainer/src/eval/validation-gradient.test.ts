import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createParamSet, initParams } from '../model/params.ts'
import { presetConfig } from '../model/presets.ts'
import { validationGradient } from './validation-gradient.ts'
import { validationLoss } from './validation-loss.ts'

test('the held-out gradient points downhill on the held-out windows: a small step against it lowers their loss, along it raises it', () => {
  const config = presetConfig('tiny')
  const params = initParams(config, 3)
  const tokens = Uint8Array.from({ length: 4000 }, (_, i) => (i * 7 + (i >> 3)) % 50 + 32)
  const opts = { batches: 2, batchSize: 2, seqLen: 16 }
  const g = validationGradient(params, tokens, opts)
  let norm = 0
  for (const x of g) norm += x * x
  norm = Math.sqrt(norm)
  assert.ok(norm > 0 && Number.isFinite(norm))
  const base = validationLoss(params, tokens, opts)
  const step = (sign: number): number => validationLoss(createParamSet(config, params.flat.map((x, i) => x + sign * 1e-2 * g[i]! / norm)), tokens, opts)
  assert.ok(step(-1) < base && base < step(1), `down ${step(-1)}, base ${base}, up ${step(1)}`)
})

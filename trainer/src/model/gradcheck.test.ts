// Finite-difference check of lossAndGrad, independent of the golden files: random tiny models
// (grouped-query, multi-head and multi-query attention, tied and untied heads, odd sequence
// length, head_dim ≠ hidden/heads).
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { finiteDifferenceCheck, gradientCheckConfigs, gradientCheckModel } from './gradient-check.ts'
import { lossAndGrad } from './llama.ts'

const BATCH = 2
const SEQ_LEN = 7
const PER_TENSOR = 24

for (const [i, { name, config }] of gradientCheckConfigs.entries()) {
  test(`finite differences agree with lossAndGrad: ${name}`, () => {
    const { params, inputIds } = gradientCheckModel(config, 100 + i, BATCH, SEQ_LEN)
    const analytic = lossAndGrad(params, inputIds, BATCH, SEQ_LEN).grads.flat.slice()
    const result = finiteDifferenceCheck(params, inputIds, BATCH, SEQ_LEN, analytic, { perTensor: PER_TENSOR, seed: 7 + i })
    assert.ok(result.checked >= 200, `only ${result.checked} coordinates sampled`)
    assert.deepEqual(result.failures, [])
    // Gradients must not be vanishingly small, or the comparison above would prove nothing.
    let norm = 0
    for (const x of analytic) norm += x * x
    assert.ok(Math.sqrt(norm) > 0.1, `gradient norm ${Math.sqrt(norm)} too small for a meaningful check`)
  })
}

test('the check catches a gradient that is off by 5% in one tensor', () => {
  const { params, inputIds } = gradientCheckModel(gradientCheckConfigs[0].config, 100, BATCH, SEQ_LEN)
  const grads = lossAndGrad(params, inputIds, BATCH, SEQ_LEN).grads
  const broken = grads.tensors.get('model.layers.0.self_attn.o_proj.weight')!.data
  for (let i = 0; i < broken.length; i++) broken[i] *= 1.05
  const result = finiteDifferenceCheck(params, inputIds, BATCH, SEQ_LEN, grads.flat, { perTensor: PER_TENSOR, seed: 7 })
  assert.ok(result.failures.length > 0, 'no failure reported')
  assert.ok(result.failures.every((f) => f.startsWith('model.layers.0.self_attn.o_proj.weight')), result.failures.join('\n'))
  assert.ok(result.worst > 1)
})

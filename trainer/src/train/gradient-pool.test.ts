import { test } from 'vitest'
import assert from 'node:assert/strict'
import { parseLlamaConfig } from '@barnraise/protocol'
import { relativeError } from '../model/golden-file.ts'
import { lossAndGrad } from '../model/llama.ts'
import { ModelError } from '../model/model-error.ts'
import { createParamSet, initParams } from '../model/params.ts'
import { GradientPool } from './gradient-pool.ts'

const config = parseLlamaConfig({ vocab_size: 40, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 })

function tokens (batch: number, seqLen: number): Int32Array {
  return Int32Array.from({ length: batch * (seqLen + 1) }, (_, i) => (i * 11 + 3) % config.vocab_size)
}

test('splitting the batch over threads gives the single-threaded loss and gradient', async () => {
  const params = initParams(config, 9)
  const pool = await GradientPool.start(config, 3)
  try {
    assert.equal(pool.threads, 3)
    // 5 rows over 3 threads gives uneven shares; 2 rows leaves a thread idle.
    for (const [batch, seqLen] of [[5, 9], [2, 6], [1, 4]]) {
      const ids = tokens(batch, seqLen)
      const want = lossAndGrad(params, ids, batch, seqLen)
      const wantFlat = want.grads.flat.slice()
      const grads = createParamSet(config)
      grads.flat.fill(7)
      const loss = await pool.lossAndGrad(params, ids, batch, seqLen, grads)
      assert.ok(Math.abs(loss - want.loss) < 1e-9, `batch ${batch}: loss ${loss} vs ${want.loss}`)
      assert.ok(relativeError(grads.flat, wantFlat) < 1e-6, `batch ${batch}: grad rel err ${relativeError(grads.flat, wantFlat)}`)
    }
    // Weights changed between steps reach the workers.
    params.flat[0] += 0.5
    const ids = tokens(4, 5)
    const want = lossAndGrad(params, ids, 4, 5).grads.flat.slice()
    const grads = createParamSet(config)
    await pool.lossAndGrad(params, ids, 4, 5, grads)
    assert.ok(relativeError(grads.flat, want) < 1e-6)
  } finally {
    await pool.close()
  }
})

test('errors in a worker share come back typed; a closed pool refuses work', async () => {
  const params = initParams(config, 10)
  const pool = await GradientPool.start(config, 2)
  const ids = tokens(4, 5)
  ids[ids.length - 1] = config.vocab_size // in the second thread's rows
  await assert.rejects(pool.lossAndGrad(params, ids, 4, 5, createParamSet(config)), (e: unknown) => e instanceof ModelError && e.code === 'ERR_TOKEN_OUT_OF_RANGE')
  await assert.rejects(pool.lossAndGrad(params, tokens(4, 5), 3, 5, createParamSet(config)), (e: unknown) => e instanceof ModelError && e.code === 'ERR_BAD_INPUT')
  await pool.close()
  await assert.rejects(pool.lossAndGrad(params, tokens(4, 5), 4, 5, createParamSet(config)), /closed/)
  await assert.rejects(GradientPool.start(config, 0), RangeError)
})

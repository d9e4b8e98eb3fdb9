import { test } from 'vitest'
import assert from 'node:assert/strict'
import { parseLlamaConfig } from '@barnraise/protocol'
import { evaluateLoss, forward, lossAndGrad } from './llama.ts'
import { ModelError } from './model-error.ts'
import { createParamSet, initParams } from './params.ts'

const config = parseLlamaConfig({ vocab_size: 31, hidden_size: 16, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 32 })

function tokens (batch: number, seqLen: number, seed: number): Int32Array {
  const ids = new Int32Array(batch * (seqLen + 1))
  for (let i = 0; i < ids.length; i++) ids[i] = (i * 7 + seed * 13) % config.vocab_size
  return ids
}

const isCode = (code: string) => (err: unknown) => err instanceof ModelError && err.code === code

test('a fresh model predicts close to uniform: loss ≈ ln(vocab)', () => {
  const params = initParams(config, 1)
  const loss = evaluateLoss(params, tokens(3, 9, 1), 3, 9)
  assert.ok(Math.abs(loss - Math.log(config.vocab_size)) < 0.05, `loss ${loss}`)
})

test('forward, evaluateLoss and lossAndGrad agree on the loss; forward returns a fresh logits array', () => {
  const params = initParams(config, 2)
  const ids = tokens(2, 5, 2)
  const a = forward(params, ids, 2, 5)
  const b = forward(params, ids, 2, 5)
  assert.equal(a.logits.length, 2 * 5 * config.vocab_size)
  assert.notEqual(a.logits, b.logits)
  assert.deepEqual(a.logits, b.logits)
  assert.equal(evaluateLoss(params, ids, 2, 5), a.loss)
  assert.ok(Math.abs(lossAndGrad(params, ids, 2, 5).loss - a.loss) < 1e-12)
})

test('lossAndGrad overwrites the given grads rather than adding to them', () => {
  const params = initParams(config, 3)
  const ids = tokens(2, 6, 3)
  const fresh = lossAndGrad(params, ids, 2, 6).grads
  const reused = createParamSet(config)
  reused.flat.fill(123)
  const out = lossAndGrad(params, ids, 2, 6, reused)
  assert.equal(out.grads, reused)
  assert.deepEqual(reused.flat, fresh.flat)
  lossAndGrad(params, ids, 2, 6, reused)
  assert.deepEqual(reused.flat, fresh.flat)
})

test('switching between shapes (reused workspaces) gives the same results as a first call', () => {
  const params = initParams(config, 4)
  const small = tokens(1, 3, 4)
  const big = tokens(3, 11, 5)
  const first = lossAndGrad(params, small, 1, 3).grads.flat.slice()
  lossAndGrad(params, big, 3, 11)
  evaluateLoss(params, big, 3, 11)
  assert.deepEqual(lossAndGrad(params, small, 1, 3).grads.flat, first)
})

test('batch rows are independent: the loss of two rows is the mean of each alone', () => {
  const params = initParams(config, 5)
  const ids = tokens(2, 7, 6)
  const both = evaluateLoss(params, ids, 2, 7)
  const one = evaluateLoss(params, ids.subarray(0, 8), 1, 7)
  const two = evaluateLoss(params, ids.subarray(8), 1, 7)
  assert.ok(Math.abs(both - (one + two) / 2) < 1e-6)
})

test('refuses out-of-range tokens, wrong lengths, bad shapes and mismatched grads with typed errors', () => {
  const params = initParams(config, 6)
  const ids = tokens(2, 4, 7)
  ids[6] = config.vocab_size
  assert.throws(() => forward(params, ids, 2, 4), isCode('ERR_TOKEN_OUT_OF_RANGE'))
  ids[6] = -1
  assert.throws(() => lossAndGrad(params, ids, 2, 4), (e: unknown) => isCode('ERR_TOKEN_OUT_OF_RANGE')(e) && /row 1, position 1/.test((e as Error).message))
  assert.throws(() => evaluateLoss(params, tokens(2, 4, 7), 2, 5), isCode('ERR_BAD_INPUT'))
  assert.throws(() => evaluateLoss(params, tokens(2, 4, 7), 0, 4), isCode('ERR_BAD_INPUT'))
  assert.throws(() => evaluateLoss(params, tokens(1, 40, 7), 1, 40), isCode('ERR_BAD_INPUT'))
  const other = createParamSet({ ...config, intermediate_size: 8 })
  assert.throws(() => lossAndGrad(params, tokens(2, 4, 7), 2, 4, other), isCode('ERR_BAD_PARAMS'))
})

test('a few steps of gradient descent on one batch drive the loss down', () => {
  const params = initParams(config, 7)
  const ids = tokens(2, 8, 8)
  const start = evaluateLoss(params, ids, 2, 8)
  let grads = createParamSet(config)
  for (let step = 0; step < 30; step++) {
    grads = lossAndGrad(params, ids, 2, 8, grads).grads
    for (let i = 0; i < params.flat.length; i++) params.flat[i] -= 0.5 * grads.flat[i]
  }
  const end = evaluateLoss(params, ids, 2, 8)
  assert.ok(end < start - 0.5, `loss ${start} → ${end}`)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { parseLlamaConfig } from '@barnraise/protocol'
import { ModelError } from './model-error.ts'
import { countParams, createParamSet, initParams, paramSpecs } from './params.ts'

const config = parseLlamaConfig({ vocab_size: 50, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, tie_word_embeddings: false })

test('paramSpecs lists Hugging Face names in order, with GQA shapes, and lm_head only when untied', () => {
  const specs = paramSpecs(config)
  assert.equal(specs.length, 1 + 2 * 9 + 2)
  assert.deepEqual(specs[0], { name: 'model.embed_tokens.weight', shape: [50, 16] })
  assert.deepEqual(specs[1], { name: 'model.layers.0.self_attn.q_proj.weight', shape: [16, 16] })
  assert.deepEqual(specs[2], { name: 'model.layers.0.self_attn.k_proj.weight', shape: [8, 16] })
  assert.deepEqual(specs[7], { name: 'model.layers.0.mlp.down_proj.weight', shape: [16, 24] })
  assert.deepEqual(specs.at(-1), { name: 'lm_head.weight', shape: [50, 16] })
  const tied = paramSpecs({ ...config, tie_word_embeddings: true })
  assert.ok(!tied.some((s) => s.name === 'lm_head.weight'))
  assert.equal(countParams(config) - countParams({ ...config, tie_word_embeddings: true }), 50 * 16)
})

test('createParamSet views every tensor onto one flat array and checks its length', () => {
  const p = createParamSet(config)
  assert.equal(p.flat.length, countParams(config))
  let at = 0
  for (const t of p.tensors.values()) {
    assert.equal(t.data.buffer, p.flat.buffer)
    assert.equal(t.data.byteOffset, p.flat.byteOffset + at * 4)
    at += t.data.length
  }
  assert.equal(at, p.flat.length)
  const flat = new Float32Array(p.flat.length).fill(3)
  assert.equal(createParamSet(config, flat).tensors.get('model.norm.weight')!.data[0], 3)
  assert.throws(() => createParamSet(config, new Float32Array(7)), (e: unknown) => e instanceof ModelError && e.code === 'ERR_BAD_PARAMS')
})

test('initParams is reproducible per seed, N(0, 0.02²) for matrices and ones for norms', () => {
  const a = initParams(config, 42)
  assert.deepEqual(a.flat, initParams(config, 42).flat)
  assert.notDeepEqual(a.flat, initParams(config, 43).flat)
  assert.ok(a.tensors.get('model.layers.1.input_layernorm.weight')!.data.every((x) => x === 1))
  const w = a.tensors.get('model.embed_tokens.weight')!.data
  const mean = w.reduce((s, x) => s + x, 0) / w.length
  const std = Math.sqrt(w.reduce((s, x) => s + (x - mean) ** 2, 0) / w.length)
  assert.ok(Math.abs(mean) < 0.003, `mean ${mean}`)
  assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`)
  assert.throws(() => initParams(config, 1.5), ModelError)
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { LLAMA_LIMITS, LlamaConfigError, parseLlamaConfig } from './llama-config.ts'

const base = { vocab_size: 256, hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2, num_attention_heads: 4 }

test('fills Hugging Face defaults and drops keys it does not use', () => {
  const c = parseLlamaConfig({ ...base, architectures: ['LlamaForCausalLM'], model_type: 'llama', torch_dtype: 'float32' })
  assert.deepEqual(c, {
    ...base,
    num_key_value_heads: 4,
    head_dim: 16,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    max_position_embeddings: 2048
  })
})

test('keeps explicit values, including a head_dim that is not hidden/heads', () => {
  const c = parseLlamaConfig({ ...base, num_key_value_heads: 2, head_dim: 8, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: true, max_position_embeddings: 128, hidden_act: 'silu', attention_bias: false, mlp_bias: false, rope_scaling: null })
  assert.equal(c.num_key_value_heads, 2)
  assert.equal(c.head_dim, 8)
  assert.equal(c.rope_theta, 500000)
  assert.equal(c.tie_word_embeddings, true)
})

function refused (json: unknown, field: string, pattern: RegExp): void {
  assert.throws(() => parseLlamaConfig(json), (e: unknown) => {
    assert.ok(e instanceof LlamaConfigError, String(e))
    assert.equal(e.code, 'ERR_INVALID_CONFIG')
    assert.equal(e.field, field)
    assert.match(e.message, pattern)
    assert.ok(e.message.includes(field))
    return true
  })
}

test('refuses bad fields with ERR_INVALID_CONFIG naming the field', () => {
  refused(null, '(config)', /JSON object/)
  refused([base], '(config)', /JSON object/)
  refused({ ...base, vocab_size: undefined }, 'vocab_size', /required/)
  refused({ ...base, hidden_size: 0 }, 'hidden_size', /positive/)
  refused({ ...base, num_hidden_layers: 2.5 }, 'num_hidden_layers', /integer/)
  refused({ ...base, intermediate_size: '160' }, 'intermediate_size', /number/)
  refused({ ...base, num_key_value_heads: 3 }, 'num_key_value_heads', /multiple/)
  refused({ ...base, hidden_size: 66 }, 'hidden_size', /multiple of num_attention_heads/)
  refused({ ...base, head_dim: 7 }, 'head_dim', /even/)
  refused({ ...base, rms_norm_eps: -1 }, 'rms_norm_eps', /positive/)
  refused({ ...base, tie_word_embeddings: 'yes' }, 'tie_word_embeddings', /true or false/)
  refused({ ...base, hidden_act: 'gelu' }, 'hidden_act', /silu/)
  refused({ ...base, attention_bias: true }, 'attention_bias', /not implemented/)
  refused({ ...base, rope_scaling: { type: 'linear', factor: 2 } }, 'rope_scaling', /not implemented/)
})

test('refuses dimensions past LLAMA_LIMITS (a hostile config must not size an allocation), and accepts them at the limit', () => {
  refused({ ...base, num_hidden_layers: 1e9 }, 'num_hidden_layers', /at most 1024/)
  refused({ ...base, hidden_size: 2 ** 17 + 4 }, 'hidden_size', /at most 131072/)
  refused({ ...base, intermediate_size: 2 ** 40 }, 'intermediate_size', /at most 131072/)
  refused({ ...base, vocab_size: 2 ** 22 + 1 }, 'vocab_size', /at most 4194304/)
  refused({ ...base, num_attention_heads: 2048, hidden_size: 4096 }, 'num_attention_heads', /at most 1024/)
  refused({ ...base, num_key_value_heads: 1025 }, 'num_key_value_heads', /at most 1024/)
  refused({ ...base, head_dim: 2048 }, 'head_dim', /at most 1024/)
  // head_dim derived from hidden / heads is bounded too.
  refused({ ...base, hidden_size: 4096, num_attention_heads: 2 }, 'head_dim', /at most 1024/)
  refused({ ...base, max_position_embeddings: 2 ** 20 + 1 }, 'max_position_embeddings', /at most 1048576/)
  const edge = parseLlamaConfig({ ...base, vocab_size: LLAMA_LIMITS.vocab_size, num_hidden_layers: LLAMA_LIMITS.num_hidden_layers, max_position_embeddings: LLAMA_LIMITS.max_position_embeddings, head_dim: LLAMA_LIMITS.head_dim })
  assert.equal(edge.num_hidden_layers, 1024)
  // Llama 3.1 405B's shape is well inside.
  const big = parseLlamaConfig({ vocab_size: 128256, hidden_size: 16384, intermediate_size: 53248, num_hidden_layers: 126, num_attention_heads: 128, num_key_value_heads: 8, max_position_embeddings: 131072 })
  assert.equal(big.head_dim, 128)
})

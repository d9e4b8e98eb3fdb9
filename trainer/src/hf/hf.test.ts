import { test, onTestFinished } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SafetensorsError, decodeSafetensors, encodeSafetensors, float32ToTensor, parseLlamaConfig } from '@barnraise/protocol'
import type { TensorEntry } from '@barnraise/protocol'
import { initParams, paramSpecs } from '../model/params.ts'
import { checkpointFiles, modelSafetensors } from './checkpoint-files.ts'
import { exportHuggingFace } from './export.ts'
import { HuggingFaceError } from './hf-error.ts'
import { checkpointHeaderLimit, importHuggingFace, paramSetFromSafetensors } from './import.ts'
import { presetConfig } from '../model/presets.ts'

const untied = parseLlamaConfig({ vocab_size: 256, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 })
const tied = { ...untied, tie_word_embeddings: true }

const isCode = (code: string, pattern: RegExp) => (err: unknown) => err instanceof HuggingFaceError && err.code === code && pattern.test(err.message)

test('export writes a Hugging Face folder that imports back to identical F32 weights', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-hf-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  for (const config of [untied, tied]) {
    const params = initParams(config, 3)
    await exportHuggingFace(dir, params, { dtype: 'F32' })
    const back = await importHuggingFace(dir)
    assert.deepEqual(back.config, config)
    assert.deepEqual(back.flat, params.flat)
    const file = decodeSafetensors(new Uint8Array(await readFile(join(dir, 'model.safetensors'))))
    assert.equal(file.metadata.format, 'pt')
    assert.deepEqual([...file.tensors.keys()], paramSpecs(config).map((s) => s.name))
    assert.equal(file.tensors.has('lm_head.weight'), !config.tie_word_embeddings)
  }
})

test('config.json is a LlamaForCausalLM config that parses back to the same config', async () => {
  const files = checkpointFiles(initParams(untied, 1), { dtype: 'BF16' })
  assert.deepEqual([...files.keys()].sort(), ['config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'])
  const cfg = JSON.parse(files.get('config.json') as string) as Record<string, unknown>
  assert.deepEqual(cfg.architectures, ['LlamaForCausalLM'])
  assert.equal(cfg.model_type, 'llama')
  assert.equal(cfg.torch_dtype, 'bfloat16')
  assert.equal(cfg.hidden_act, 'silu')
  assert.equal(cfg.attention_bias, false)
  assert.equal(cfg.mlp_bias, false)
  assert.equal(cfg.bos_token_id, null)
  assert.equal(typeof cfg.transformers_version, 'string')
  assert.deepEqual(parseLlamaConfig(cfg), untied)
  const tok = JSON.parse(files.get('tokenizer.json') as string) as { model: { vocab: Record<string, number> } }
  assert.equal(Object.keys(tok.model.vocab).length, 256)
})

test('F16 and BF16 exports import within their rounding error', () => {
  const params = initParams(untied, 7)
  for (const [dtype, rel] of [['F16', 2 ** -11], ['BF16', 2 ** -8]] as const) {
    const back = paramSetFromSafetensors(untied, modelSafetensors(params, { dtype }))
    for (let i = 0; i < params.flat.length; i++) {
      const x = params.flat[i]
      const bound = Math.max(Math.abs(x) * rel, dtype === 'F16' ? 2 ** -25 : 0)
      if (Math.abs(back.flat[i] - x) > bound) assert.fail(`${dtype} element ${i}: ${back.flat[i]} vs ${x}`)
    }
    const file = decodeSafetensors(modelSafetensors(params, { dtype }))
    assert.ok([...file.tensors.values()].every((t) => t.dtype === dtype))
  }
  const huge = initParams(untied, 7)
  huge.flat[5] = 1e6
  assert.throws(() => modelSafetensors(huge, { dtype: 'F16' }), isCode('ERR_OUT_OF_RANGE', /model\.embed_tokens\.weight\[5\]/))
})

/** The exported tensors of `params`, to tamper with. */
function tensorsOf (config: typeof untied): Map<string, TensorEntry> {
  return new Map(decodeSafetensors(modelSafetensors(initParams(config, 2), { dtype: 'F32' })).tensors)
}

test('a missing tensor, a wrong shape, a foreign tensor, a bad dtype or a NaN is refused by name', () => {
  const missing = tensorsOf(untied)
  missing.delete('model.layers.1.mlp.up_proj.weight')
  assert.throws(() => paramSetFromSafetensors(untied, encodeSafetensors(missing)), isCode('ERR_MISSING_TENSOR', /model\.layers\.1\.mlp\.up_proj\.weight/))

  const shape = tensorsOf(untied)
  shape.set('model.layers.0.self_attn.k_proj.weight', float32ToTensor(new Float32Array(32 * 32), [32, 32]))
  assert.throws(() => paramSetFromSafetensors(untied, encodeSafetensors(shape)), isCode('ERR_SHAPE_MISMATCH', /model\.layers\.0\.self_attn\.k_proj\.weight has shape \[32,32\].*\[16,32\]/))

  const extra = tensorsOf(untied)
  extra.set('model.layers.0.self_attn.q_proj.bias', float32ToTensor(new Float32Array(32), [32]))
  assert.throws(() => paramSetFromSafetensors(untied, encodeSafetensors(extra)), isCode('ERR_UNEXPECTED_TENSOR', /q_proj\.bias/))

  const dtype = tensorsOf(untied)
  dtype.set('model.norm.weight', { dtype: 'I32', shape: [32], data: new Uint8Array(128) })
  assert.throws(() => paramSetFromSafetensors(untied, encodeSafetensors(dtype)), isCode('ERR_UNSUPPORTED_DTYPE', /model\.norm\.weight is I32/))

  const nan = tensorsOf(untied)
  nan.set('model.norm.weight', float32ToTensor(new Float32Array(32).fill(Number.NaN), [32]))
  assert.throws(() => paramSetFromSafetensors(untied, encodeSafetensors(nan)), isCode('ERR_NON_FINITE', /model\.norm\.weight/))

  // an untied checkpoint loaded with a tied config: lm_head.weight is a harmless copy transformers ignores
  const headCopy = tensorsOf(untied)
  assert.equal(paramSetFromSafetensors(tied, encodeSafetensors(headCopy)).flat.length, initParams(tied, 0).flat.length)
  // a tied checkpoint loaded with an untied config lacks the head
  assert.throws(() => paramSetFromSafetensors(untied, encodeSafetensors(tensorsOf(tied))), isCode('ERR_MISSING_TENSOR', /lm_head\.weight/))
})

test('import reads a sharded checkpoint and explains a folder that is not one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-hf-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  await assert.rejects(importHuggingFace(dir), isCode('ERR_MISSING_FILE', /config\.json not found/))
  const params = initParams(untied, 5)
  const files = checkpointFiles(params, { dtype: 'F32' })
  await writeFile(join(dir, 'config.json'), files.get('config.json')!)
  await assert.rejects(importHuggingFace(dir), isCode('ERR_MISSING_FILE', /neither model\.safetensors/))
  const all = decodeSafetensors(files.get('model.safetensors') as Uint8Array).tensors
  const names = [...all.keys()]
  const half = Math.floor(names.length / 2)
  const weightMap: Record<string, string> = {}
  for (const [i, part] of [names.slice(0, half), names.slice(half)].entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`
    await writeFile(join(dir, file), encodeSafetensors(new Map(part.map((n) => [n, all.get(n)!])), { format: 'pt' }))
    for (const n of part) weightMap[n] = file
  }
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }))
  assert.deepEqual((await importHuggingFace(dir)).flat, params.flat)
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.norm.weight': '../escape.safetensors' } }))
  await assert.rejects(importHuggingFace(dir), isCode('ERR_BAD_INDEX', /escape/))
  await writeFile(join(dir, 'config.json'), '{not json')
  await assert.rejects(importHuggingFace(dir), isCode('ERR_BAD_CONFIG', /config\.json/))
})

/** The header our writer (encodeSafetensors via modelSafetensors) gives `config`'s weights, built without the weights. */
function writerHeaderBytes (config: ReturnType<typeof parseLlamaConfig>, dtype: 'F32' | 'BF16', extraPerLayer: (l: number) => Array<[string, number[]]> = () => []): number {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } }
  let offset = 0
  const add = (name: string, shape: number[], bytes: number): void => {
    const size = shape.reduce((a, b) => a * b, 1) * bytes
    header[name] = { dtype, shape, data_offsets: [offset, offset + size] }
    offset += size
  }
  for (const s of paramSpecs(config)) add(s.name, s.shape, dtype === 'F32' ? 4 : 2)
  for (let l = 0; l < config.num_hidden_layers; l++) for (const [name, shape] of extraPerLayer(l)) add(name, shape, 4)
  return Math.ceil(new TextEncoder().encode(JSON.stringify(header)).byteLength / 8) * 8
}

test('checkpointHeaderLimit leaves room over the headers real checkpoints have', () => {
  // What our own writer produces, measured on real files.
  for (const config of [untied, tied, presetConfig('small')]) {
    const bytes = modelSafetensors(initParams(config, 1), { dtype: 'F32' })
    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true))
    assert.equal(headerLength, writerHeaderBytes(config, 'F32'))
    assert.ok(headerLength * 2 < checkpointHeaderLimit(config))
    assert.equal(paramSetFromSafetensors(config, bytes).flat.length, initParams(config, 1).flat.length)
  }
  // GPU presets and a Llama-3-70B-shaped config (80 layers, BF16, ~140 GB of offsets) with the
  // rotary_emb.inv_freq buffers older exporters add: at least twice the room they use.
  const llama70b = parseLlamaConfig({ vocab_size: 128256, hidden_size: 8192, intermediate_size: 28672, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8, max_position_embeddings: 8192 })
  for (const config of [presetConfig('medium'), presetConfig('1b'), llama70b]) {
    const used = writerHeaderBytes(config, 'BF16', (l) => [[`model.layers.${l}.self_attn.rotary_emb.inv_freq`, [64]]])
    assert.ok(used * 2 < checkpointHeaderLimit(config), `${used} bytes of header against a limit of ${checkpointHeaderLimit(config)}`)
  }
  // The largest config we accept still gets a bound far below the format's 100 MB.
  const largest = parseLlamaConfig({ vocab_size: 2 ** 22, hidden_size: 2 ** 17, intermediate_size: 2 ** 17, num_hidden_layers: 1024, num_attention_heads: 1024, num_key_value_heads: 1024, head_dim: 128 })
  assert.ok(checkpointHeaderLimit(largest) < 3_000_000)
})

test('a checkpoint whose header is bloated past what its config implies is refused before parsing', () => {
  const params = initParams(tied, 2)
  const tensors = new Map<string, TensorEntry>()
  for (const [name, t] of params.tensors) tensors.set(name, float32ToTensor(t.data, t.shape))
  // The weights are right; a megabyte of metadata rides along (a hostile base checkpoint's 100 MB, scaled down).
  const bloated = encodeSafetensors(tensors, { format: 'pt', junk: 'x'.repeat(1_000_000) })
  assert.throws(() => paramSetFromSafetensors(tied, bloated), (err: unknown) => {
    assert.ok(err instanceof SafetensorsError, String(err))
    assert.equal(err.code, 'ERR_HEADER_TOO_LARGE')
    assert.match(err.message, /exceeds the \d+ bytes a file of the expected tensors needs/)
    return true
  })
  // The same weights with ordinary metadata load.
  assert.deepEqual(paramSetFromSafetensors(tied, encodeSafetensors(tensors, { format: 'pt' })).flat, params.flat)
})

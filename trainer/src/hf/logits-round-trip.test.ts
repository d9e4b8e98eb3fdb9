import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initParams } from '../model/params.ts'
import { forward } from '../model/llama.ts'
import { presetConfig } from '../model/presets.ts'
import { exportHuggingFace } from './export.ts'
import { importHuggingFace } from './import.ts'

test('export then import gives identical logits (F32), and close ones through BF16', async () => {
  const params = initParams(presetConfig('tiny'), 42)
  const ids = Int32Array.from({ length: 2 * 17 }, (_, i) => (i * 37 + 11) % 256)
  const before = forward(params, ids, 2, 16).logits

  const dir = await mkdtemp(join(tmpdir(), 'barnraise-hf-'))
  await exportHuggingFace(dir, params, { dtype: 'F32' })
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>
  assert.deepEqual(config.architectures, ['LlamaForCausalLM'])
  assert.equal(config.model_type, 'llama')
  assert.equal(config.torch_dtype, 'float32')
  const after = forward(await importHuggingFace(dir), ids, 2, 16).logits
  assert.deepEqual(after, before)

  const bf16Dir = await mkdtemp(join(tmpdir(), 'barnraise-hf-bf16-'))
  await exportHuggingFace(bf16Dir, params, { dtype: 'BF16' })
  const approx = forward(await importHuggingFace(bf16Dir), ids, 2, 16).logits
  let num = 0
  let den = 0
  for (let i = 0; i < before.length; i++) { num += (approx[i]! - before[i]!) ** 2; den += before[i]! ** 2 }
  assert.ok(Math.sqrt(num / den) < 2e-2, `bf16 relative error ${Math.sqrt(num / den)}`)
})

// The GPU machine's checkpoint check (scripts/gpu-check/) must work before a session spends
// device time on it: prepare.ts writes Hugging Face folders with the coordinator's export code,
// and hf_load_check.py compares each folder's logits with the TypeScript trainer's. transformers
// is not installable here, so this runs the same comparison with the torch executor's model.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import type { SpawnSyncReturns } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TorchExecutor } from '../node-agent/src/executors/torch-executor.ts'

const ROOT = join(import.meta.dirname, '..')

test('prepare.ts writes folders whose logits hf_load_check.py reproduces, and a damaged folder fails it', async () => {
  const torch = await TorchExecutor.start({ device: 'cpu', threads: 1 })
  const python = torch.python
  await torch.close()
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-gpu-check-'))
  try {
    const prepared = spawnSync(join(ROOT, 'bin/node'), ['scripts/gpu-check/prepare.ts', dir], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(prepared.status, 0, prepared.stderr)
    const check = (): SpawnSyncReturns<string> => spawnSync(python, ['scripts/gpu-check/hf_load_check.py', dir, '--loader', 'barnraise', '--device', 'cpu'], { cwd: ROOT, encoding: 'utf8' })
    const good = check()
    assert.equal(good.status, 0, good.stdout + good.stderr)
    assert.match(good.stdout, /hf-check: 4 of 4 folders load and match \(barnraise\)/)
    assert.match(good.stdout, /untied-mha-f32: ok, logits relative error \d\.\d\de-0[5-9]/)

    // A folder whose weights are not what the logits were computed from is caught.
    await writeFile(join(dir, 'untied-mha-f32', 'model.safetensors'), 'truncated')
    const bad = check()
    assert.equal(bad.status, 1)
    assert.match(bad.stdout, /untied-mha-f32: FAILED/)
    assert.match(bad.stdout, /3 of 4 folders/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

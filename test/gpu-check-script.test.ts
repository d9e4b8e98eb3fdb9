// The GPU machine's checkpoint check (scripts/gpu-check/) must work before a session spends
// device time on it: prepare.ts writes Hugging Face folders with the coordinator's export code,
// and hf_load_check.py compares each folder's logits with the TypeScript trainer's. transformers
// is not installable here, so this runs the same comparison with the torch executor's model.
// evaluate_check.py measures the prepared checkpoint's loss as the coordinator's torch evaluator
// does; here on the CPU only.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import type { SpawnSyncReturns } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
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

    const evaluated = spawnSync(python, ['scripts/gpu-check/evaluate_check.py', dir, '--devices', 'cpu'], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(evaluated.status, 0, evaluated.stdout + evaluated.stderr)
    assert.match(evaluated.stdout, /evaluate-check: cpu \(cpu, \w+ attention\): \d+\.\d+ in [\d.]+ s, relative difference to TypeScript \d\.\d\de-(0[5-9]|1\d)\n/)
    assert.match(evaluated.stdout, /evaluate-check: PASS/)
    // A checkpoint other than the one the loss was computed from (a quarter of its weights zeroed, past the header) is caught.
    const changed = await readFile(join(dir, 'validation-loss', 'model.safetensors'))
    changed.fill(0, Math.floor(changed.length / 2), Math.floor(changed.length * 3 / 4))
    await writeFile(join(dir, 'validation-loss', 'model.safetensors'), changed)
    const wrong = spawnSync(python, ['scripts/gpu-check/evaluate_check.py', dir, '--devices', 'cpu'], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(wrong.status, 1, wrong.stdout + wrong.stderr)
    assert.match(wrong.stdout, /> 1e-4\n[\s\S]*evaluate-check: FAIL/)

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

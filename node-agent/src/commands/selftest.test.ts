import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeSafetensors, encodeSafetensors, float32ToTensor, tensorToFloat32 } from '@barnraise/protocol'
import { GOLDEN_DIR } from '@barnraise/trainer'
import { runSelftestCommand } from './selftest.ts'

async function run (argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await runSelftestCommand(argv, {
    stdout: { write: (s: string) => { stdout += s } },
    stderr: { write: (s: string) => { stderr += s } }
  })
  return { code, stdout, stderr }
}

const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1) ?? ''
const gqa = join(GOLDEN_DIR, 'llama-tiny-gqa.safetensors')

test('with no arguments the built-in checks pass and print a table', async () => {
  const { code, stdout } = await run([])
  assert.equal(code, 0, stdout)
  assert.match(lastLine(stdout), /^selftest: PASS max_rel_err=\d\.\d\de[-+]\d+$/)
  for (const check of ['matmul kernel', 'golden llama-tiny-gqa', 'golden llama-tiny-tied', 'golden adamw', 'golden nesterov-outer', 'finite differences']) {
    assert.ok(stdout.includes(check), `missing ${check}`)
  }
})

test('--golden checks every tensor of a llama-forward-backward file', async () => {
  const { code, stdout } = await run(['--golden', gqa])
  assert.equal(code, 0, stdout)
  assert.match(stdout, /^logits +\d/m)
  assert.match(stdout, /^grad\/model\.layers\.1\.mlp\.down_proj\.weight +\d/m)
  assert.equal(stdout.match(/^grad\//gm)?.length, 21)
  const maxErr = Number(lastLine(stdout).split('=')[1])
  assert.ok(maxErr > 0 && maxErr < 1e-4, lastLine(stdout))
})

test('--golden accepts the optimizer kinds', async () => {
  for (const name of ['adamw', 'nesterov-outer']) {
    const { code, stdout } = await run(['--golden', join(GOLDEN_DIR, `${name}.safetensors`)])
    assert.equal(code, 0, stdout)
    assert.match(stdout, /^step 3 update/m)
  }
})

test('a golden file with a wrong gradient fails with exit 1, naming the tensor', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'selftest-'))
  try {
    const file = decodeSafetensors(await readFile(gqa))
    const name = 'grad/model.layers.0.self_attn.v_proj.weight'
    const entry = file.tensors.get(name)!
    const skewed = tensorToFloat32(entry).map((x) => x * 1.01)
    file.tensors.set(name, float32ToTensor(skewed, entry.shape))
    const path = join(dir, 'corrupt.safetensors')
    await writeFile(path, encodeSafetensors(file.tensors, file.metadata))
    const { code, stdout } = await run(['--golden', path])
    assert.equal(code, 1)
    assert.match(lastLine(stdout), /^selftest: FAIL 1 of 23 checks .*grad\/model\.layers\.0\.self_attn\.v_proj\.weight/)
    assert.match(stdout, /^grad\/model\.layers\.0\.self_attn\.v_proj\.weight +\S+ +1e-4 +FAIL$/m)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('malformed files, unknown kinds, missing files and bad options exit 2 with a clear error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'selftest-'))
  try {
    const bytes = await readFile(gqa)
    const truncated = join(dir, 'truncated.safetensors')
    await writeFile(truncated, bytes.subarray(0, bytes.length - 100))
    let r = await run(['--golden', truncated])
    assert.equal(r.code, 2)
    assert.match(lastLine(r.stdout), /^selftest: FAIL .*truncated\.safetensors: /)
    assert.ok(r.stderr.length > 0)

    const file = decodeSafetensors(bytes)
    const otherKind = join(dir, 'other.safetensors')
    await writeFile(otherKind, encodeSafetensors(file.tensors, { ...file.metadata, kind: 'mystery' }))
    r = await run(['--golden', otherKind])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /kind "mystery" is not one of llama-forward-backward, adamw, nesterov-outer/)

    const missing = new Map(file.tensors)
    missing.delete('grad/model.norm.weight')
    const incomplete = join(dir, 'incomplete.safetensors')
    await writeFile(incomplete, encodeSafetensors(missing, file.metadata))
    r = await run(['--golden', incomplete])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /no tensor "grad\/model\.norm\.weight"/)

    r = await run(['--golden', join(dir, 'absent.safetensors')])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /ENOENT/)

    r = await run(['--frobnicate'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /usage: barnraise-agent selftest/)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('--executor torch --golden checks the loss and every gradient in the PyTorch child, within 1e-4', async () => {
  const { code, stdout } = await run(['--executor', 'torch', '--golden', gqa])
  assert.equal(code, 0, stdout)
  assert.match(stdout, /^selftest: torch executor: PyTorch \S+ on CPU/m)
  assert.match(stdout, /^loss +\d/m)
  assert.equal(stdout.match(/^grad\//gm)?.length, 21)
  const maxErr = Number(lastLine(stdout).split('=')[1])
  assert.ok(maxErr > 0 && maxErr < 1e-4, lastLine(stdout))
})

test('--executor torch with an interpreter that is not there fails with what to install', async () => {
  const { code, stdout } = await run(['--executor', 'torch', '--python', '/nonexistent/python3'])
  assert.equal(code, 2)
  assert.match(lastLine(stdout), /^selftest: FAIL torch executor \(ERR_PYTHON_MISSING\): .*install Python/)
})

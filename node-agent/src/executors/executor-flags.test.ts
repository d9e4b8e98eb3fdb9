import { test } from 'vitest'
import assert from 'node:assert/strict'
import { gpuFlagWithoutCuda, memoryFlagsFor, parseExecutorFlags } from './executor-flags.ts'

const GiB = 2 ** 30

test('--max-memory and --max-gpu-memory are two caps: the host\'s and the GPU\'s', () => {
  const both = parseExecutorFlags({ executor: 'torch', device: 'cuda', 'max-memory': '16GiB', 'max-gpu-memory': '20GiB' }, 4, 'auto')
  assert.deepEqual(both, { ok: true, choice: 'torch', settings: { threads: 4, device: 'cuda', precision: 'auto', checkpointing: 'auto', sharding: 'auto', hostMemoryLimitBytes: 16 * GiB, gpuMemoryLimitBytes: 20 * GiB } })
  // Either alone; auto and torch on --device auto may yet land on a GPU, so the parser takes the GPU cap there.
  const gpu = parseExecutorFlags({ 'max-gpu-memory': '1.5' }, 1, 'auto')
  assert.ok(gpu.ok)
  assert.equal(gpu.settings.gpuMemoryLimitBytes, 1.5 * GiB)
  assert.equal(gpu.settings.hostMemoryLimitBytes, undefined)
  for (const device of ['auto', 'cuda:1', 'cuda:all', 'cuda:0,cuda:1']) assert.equal(parseExecutorFlags({ executor: 'torch', device, 'max-gpu-memory': '8GiB' }, 1, 'auto').ok, true, device)
  const host = parseExecutorFlags({ executor: 'torch', device: 'cpu', 'max-memory': '512MiB' }, 1, 'auto')
  assert.ok(host.ok)
  assert.equal(host.settings.hostMemoryLimitBytes, 512 * 2 ** 20)
  assert.equal(host.settings.gpuMemoryLimitBytes, undefined)
})

test('a bad size is refused naming the flag it was given to', () => {
  assert.deepEqual(parseExecutorFlags({ 'max-gpu-memory': '20 gigs' }, 1, 'auto'), { ok: false, message: '--max-gpu-memory has an unknown unit "gigs": give a size such as 8GiB or 512MiB (KiB, MiB, GiB, TiB, or KB, MB, GB, TB; a bare number is GiB)' })
  assert.deepEqual(parseExecutorFlags({ 'max-gpu-memory': '0' }, 1, 'auto'), { ok: false, message: '--max-gpu-memory must be more than zero: give a size such as 8GiB or 512MiB (KiB, MiB, GiB, TiB, or KB, MB, GB, TB; a bare number is GiB)' })
  const bad = parseExecutorFlags({ 'max-memory': '16GiB', 'max-gpu-memory': '-1GiB' }, 1, 'auto')
  assert.equal(bad.ok, false)
  assert.match(bad.ok ? '' : bad.message, /^--max-gpu-memory cannot be "-1GiB"/)
  const badHost = parseExecutorFlags({ 'max-memory': 'lots', 'max-gpu-memory': '8GiB' }, 1, 'auto')
  assert.match(badHost.ok ? '' : badHost.message, /^--max-memory cannot be "lots"/)
})

test('--max-gpu-memory where the flags rule out CUDA is a usage error that says what to do', () => {
  for (const [values, why] of [
    [{ executor: 'typescript', 'max-gpu-memory': '8GiB' }, '--executor typescript trains on the CPU'],
    [{ executor: 'torch', device: 'cpu', 'max-gpu-memory': '8GiB' }, '--device cpu trains on the CPU'],
    [{ device: 'cpu,cpu', 'max-gpu-memory': '8GiB' }, '--device cpu,cpu trains on the CPU']
  ] as const) {
    assert.deepEqual(parseExecutorFlags(values, 1, 'auto'), { ok: false, message: gpuFlagWithoutCuda(why) })
  }
  assert.equal(gpuFlagWithoutCuda('--device cpu trains on the CPU'), '--max-gpu-memory caps GPU memory for torch on CUDA, but --device cpu trains on the CPU; drop it (--max-memory caps this host\'s memory), or train on a GPU with --executor torch --device cuda')
})

test('against the executor chosen: the GPU cap off CUDA is refused; --max-memory alone on CUDA caps the GPU, and join says so', () => {
  const refused = memoryFlagsFor('torch-cpu', 'PyTorch 2.4 on CPU (4 threads)', { gpuMemoryLimitBytes: 8 * GiB })
  assert.deepEqual(refused, { ok: false, message: gpuFlagWithoutCuda('the executor chosen, PyTorch 2.4 on CPU (4 threads) (torch-cpu), does not run on a GPU') })
  assert.equal(memoryFlagsFor('typescript', 'the TypeScript CPU trainer (1 thread)', { gpuMemoryLimitBytes: 8 * GiB, hostMemoryLimitBytes: GiB }).ok, false)
  assert.deepEqual(memoryFlagsFor('torch-cuda', 'PyTorch on H100', { gpuMemoryLimitBytes: 20 * GiB, hostMemoryLimitBytes: 16 * GiB }), { ok: true })
  assert.deepEqual(memoryFlagsFor('torch-cuda', 'PyTorch on H100', {}), { ok: true })
  assert.deepEqual(memoryFlagsFor('typescript', 'the TypeScript CPU trainer (1 thread)', { hostMemoryLimitBytes: GiB }), { ok: true })
  const compat = memoryFlagsFor('torch-cuda', 'PyTorch on H100', { hostMemoryLimitBytes: 20 * GiB })
  assert.ok(compat.ok)
  assert.equal(compat.note, 'agent: --max-memory 20.0 GiB caps the GPU, as before --max-gpu-memory existed (and scoring\'s host memory), not the agent\'s host copies of a unit; give --max-gpu-memory SIZE for the GPU and --max-memory then caps this host')
})

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createExecutor, formatOffers, workloadFor } from './executor-choice.ts'
import { parseExecutorFlags } from './executor-flags.ts'
import { presetConfig } from '@barnraise/trainer'
import { syntheticUnit } from './synthetic-unit.ts'

test('--executor auto measures TypeScript and torch on the CPU and keeps the faster one', async () => {
  const { executor, offers } = await createExecutor('auto', { threads: 1, device: 'cpu' })
  try {
    assert.ok(offers !== undefined)
    const measured = offers.filter((o) => o.tokensPerSecond !== undefined)
    assert.deepEqual(measured.map((o) => o.id).sort(), ['torch-cpu', 'typescript'])
    for (const o of measured) assert.ok(o.tokensPerSecond! > 0 && Math.abs(o.gflops! - 6 * 198_208 * o.tokensPerSecond! / 1e9) < 1e-9)
    const fastest = measured.reduce((a, b) => (b.tokensPerSecond! > a.tokensPerSecond! ? b : a))
    assert.equal(executor.kind, fastest.kind)
    assert.ok(measured.every((o) => o.measuredOn === 'small, batch 8 × 128'))
    const table = formatOffers(offers)
    assert.match(table, /^executors \(training throughput on a model sized for each device; auto keeps the highest GFLOP\/s\):$/m)
    assert.match(table, /^ {2}typescript +the TypeScript CPU trainer \(1 thread\): [\d,]+ tokens\/s, \d+\.\d\d GFLOP\/s \(small, batch 8 × 128\)$/m)
    assert.match(table, /^ {2}torch-cpu +PyTorch \S+ on CPU \(1 thread\): [\d,]+ tokens\/s/m)
  } finally {
    await executor.close?.()
  }
})

test('with two threads, auto also measures torch as two CPU ranks of one thread each, and keeps whichever trains fastest', async () => {
  const { executor, offers } = await createExecutor('auto', { threads: 2, device: 'cpu' })
  try {
    assert.ok(offers !== undefined)
    assert.deepEqual(offers.map((o) => o.id), ['typescript', 'torch-cpu', 'torch-cpu×2'])
    for (const o of offers) assert.ok(o.error === undefined && o.tokensPerSecond! > 0, JSON.stringify(o))
    const ranks = offers.find((o) => o.id === 'torch-cpu×2')!
    assert.match(ranks.description, /on CPU \(1 thread × 2 ranks\)$/)
    const fastest = offers.reduce((a, b) => (b.gflops! > a.gflops! ? b : a))
    assert.equal(executor.name, fastest.description)
    assert.match(formatOffers(offers), /^ {2}torch-cpu×2 +PyTorch \S+ on CPU \(1 thread × 2 ranks\): [\d,]+ tokens\/s/m)
  } finally {
    await executor.close?.()
  }
})

test('CPUs are measured on the demo model, GPUs on the 125M preset at 8 rows of 512 per GPU', () => {
  assert.deepEqual(workloadFor('typescript'), { preset: 'small', batchSize: 8, seqLen: 128, steps: 4 })
  assert.deepEqual(workloadFor('torch-cpu', 2), { preset: 'small', batchSize: 8, seqLen: 128, steps: 4 })
  assert.deepEqual(workloadFor('torch-cuda'), { preset: '125m', batchSize: 8, seqLen: 512, steps: 4 })
  assert.deepEqual(workloadFor('torch-cuda', 4), { preset: '125m', batchSize: 32, seqLen: 512, steps: 4 })
})

test('executor flags are checked with a message naming the flag', () => {
  assert.deepEqual(parseExecutorFlags({ executor: 'gpu' }, 1, 'auto'), { ok: false, message: '--executor must be one of auto, typescript, torch' })
  assert.equal(parseExecutorFlags({ device: 'tpu' }, 1, 'auto').ok, false)
  // Several GPUs in one node: every one, or a list; a list with a hole or a stranger is refused.
  for (const device of ['cuda:all', 'cuda:0,cuda:1', 'cpu,cpu']) assert.equal(parseExecutorFlags({ device }, 1, 'auto').ok, true, device)
  for (const device of ['cuda:0,', ',cuda:1', 'cuda:0,tpu', 'cuda:all,cuda:1']) assert.equal(parseExecutorFlags({ device }, 1, 'auto').ok, false, device)
  assert.equal(parseExecutorFlags({ 'max-memory': '-1' }, 1, 'auto').ok, false)
  assert.deepEqual(parseExecutorFlags({ 'max-memory': '8 gigs' }, 1, 'auto'), { ok: false, message: '--max-memory has an unknown unit "gigs": give a size such as 8GiB or 512MiB (KiB, MiB, GiB, TiB, or KB, MB, GB, TB; a bare number is GiB)' })
  const sized = parseExecutorFlags({ 'max-memory': '512MiB' }, 1, 'auto')
  assert.equal(sized.ok && sized.settings.hostMemoryLimitBytes, 2 ** 29)
  assert.deepEqual(parseExecutorFlags({ 'shard-optimizer': 'yes' }, 1, 'auto'), { ok: false, message: '--shard-optimizer must be auto, on or off' })
  const ok = parseExecutorFlags({ executor: 'torch', device: 'cuda:1', precision: 'float32', 'max-memory': '0.5' }, 4, 'auto')
  assert.deepEqual(ok, { ok: true, choice: 'torch', settings: { threads: 4, device: 'cuda:1', precision: 'float32', checkpointing: 'auto', sharding: 'auto', hostMemoryLimitBytes: 2 ** 29 } })
  const sharded = parseExecutorFlags({ device: 'cuda:all', 'shard-optimizer': 'on' }, 4, 'auto')
  assert.equal(sharded.ok && sharded.settings.sharding, 'on')
})

test('--max-memory reaches the TypeScript trainer join builds: a unit over it is declined naming the flag; a GPU cap never reaches it', async () => {
  const flags = parseExecutorFlags({ executor: 'typescript', 'max-memory': '200MiB' }, 1, 'auto')
  assert.ok(flags.ok)
  // The parser refuses --max-gpu-memory with typescript; were it set anyway, the host cap alone bounds the CPU trainer.
  const { executor } = await createExecutor(flags.choice, { ...flags.settings, gpuMemoryLimitBytes: 64 * 2 ** 30 })
  try {
    // ~0.27 GiB of training memory: over 200 MiB on any machine.
    const unit = syntheticUnit({ ...presetConfig('tiny'), max_position_embeddings: 8192 }, { innerSteps: 1, batchSize: 2, seqLen: 2048 })
    const refusal = await executor.check?.(unit, new AbortController().signal)
    assert.equal(refusal?.code, 'ERR_UNIT_TOO_LARGE')
    assert.match(refusal?.message ?? '', /this node allows 0\.2 GiB \(--max-memory\)/)
  } finally {
    await executor.close?.()
  }
})

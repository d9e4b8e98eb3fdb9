// The torch executor against the real Python child (Debian's python3-torch on the CPU in CI):
// known answers, parity with the TypeScript executor, a crashed child, and the errors a user
// meets first. Tiny models and few steps: CI has two cores.
import { afterAll, beforeAll, describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { decodeSafetensors, tensorToFloat32 } from '@barnraise/protocol'
import { GOLDEN_DIR, demoCorpusShards, gpuModelPresets, initParams, modelPresets, presetConfig } from '@barnraise/trainer'
import { createBatchSource } from '../batch-source.ts'
import type { BatchSource, TrainResult } from './executor.ts'
import { ExecutorError } from './executor-error.ts'
import { TorchExecutor } from './torch-executor.ts'
import { TypeScriptExecutor } from './typescript-executor.ts'
import { randomBatches, syntheticUnit } from './synthetic-unit.ts'
import { TORCH_EXECUTOR_DIR } from './torch-child.ts'

const tiny = presetConfig('tiny')

/** ‖a − b‖ / ‖b‖ in float64. */
function relDiff (a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0
  let den = 0
  for (let i = 0; i < b.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2 }
  return Math.sqrt(num / den)
}

async function corpusBatches (batchSize: number, seqLen: number): Promise<BatchSource> {
  const { train } = await demoCorpusShards()
  const tokens = train[0]!.tokens
  const id = 'f'.repeat(64)
  return createBatchSource([{ shard: id, start: 0, end: tokens.length }], new Map([[id, tokens]]), batchSize, seqLen)
}

const quiet = { onProgress: () => {}, signal: new AbortController().signal }

describe('torch executor', () => {
  let dir = ''
  let torch: TorchExecutor
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'barnraise-torch-'))
    torch = await TorchExecutor.start({ device: 'cpu', threads: 1 })
  })
  afterAll(async () => {
    await torch.close()
    await rm(dir, { recursive: true, force: true })
  })

  test('says what it runs on and reports itself as torch-cpu', () => {
    assert.equal(torch.kind, 'torch-cpu')
    assert.match(torch.name, /^PyTorch \d+\.\d+.* on CPU \(1 thread\)$/)
    assert.equal(torch.ready.device, 'cpu')
    assert.ok(torch.ready.devices.some((d) => d.name === 'cpu'))
  })

  test('golden files: loss and every gradient within 1e-4 of PyTorch float64, in the child', async () => {
    for (const name of ['llama-tiny-gqa', 'llama-tiny-tied']) {
      const rows = await torch.golden(join(GOLDEN_DIR, `${name}.safetensors`))
      const file = decodeSafetensors(await readFile(join(GOLDEN_DIR, `${name}.safetensors`)))
      const gradNames = [...file.tensors.keys()].filter((k) => k.startsWith('grad/'))
      assert.deepEqual(rows.filter((r) => r.name.startsWith('grad/')).map((r) => r.name).sort(), gradNames.sort(), 'a row for every gradient')
      assert.ok(rows.some((r) => r.name === 'loss'))
      for (const r of rows) assert.ok(r.value !== null && r.value <= 1e-4, `${name} ${r.name}: ${r.value}`)
    }
  })

  test('20 inner steps from the same base, batches and recipe end at the same weights as the TypeScript executor; both continue from their saved state', async () => {
    const base = initParams(tiny, 7).flat
    const batches = await corpusBatches(4, 32)
    const unit = syntheticUnit(tiny, { innerSteps: 20, batchSize: 4, seqLen: 32, lr: 3e-3, warmupSteps: 5, weightDecay: 0.1, beta2: 0.95, gradClip: 1 }, { scheduleOffset: 3, totalInnerSteps: 60 })
    const ts = new TypeScriptExecutor({ threads: 1 })
    const tsDir = join(dir, 'parity-ts')
    const torchDir = join(dir, 'parity-torch')
    const a = await ts.train({ unit, base, batches, stateDir: tsDir, ...quiet })
    const b = await torch.train({ unit, base, batches, stateDir: torchDir, ...quiet })
    assert.equal(a.executor, 'typescript')
    assert.equal(b.executor, 'torch-cpu')
    assert.equal(b.tokens, a.tokens)
    assert.equal(b.lossCurve.length, 20)
    assert.ok(relDiff(b.lossCurve, a.lossCurve) < 1e-5, `loss curves: ${relDiff(b.lossCurve, a.lossCurve)}`)
    // Stated tolerance: the two results differ by under 1e-4 of the distance they moved from the
    // base, and by under 1e-5 of the weights (measured here: 4e-6 and 1.3e-6). The TypeScript
    // trainer accumulates in float64, torch in float32; AdamW's m/√v amplifies the difference
    // where gradients are tiny, so the bar is on the whole vector, not per element.
    const update = relDiff(a.params.map((p, i) => p - base[i]!), b.params.map((p, i) => p - base[i]!))
    assert.ok(update < 1e-4, `update difference ${update}`)
    assert.ok(relDiff(b.params, a.params) < 1e-5, `weights difference ${relDiff(b.params, a.params)}`)

    // Same optimizer state file, same contents: a node may switch executors between rounds.
    const stateOf = async (d: string): Promise<{ step: string | undefined, m: Float32Array }> => {
      const f = decodeSafetensors(await readFile(join(d, 'inner-adamw.safetensors')))
      return { step: f.metadata.step, m: tensorToFloat32(f.tensors.get('m')!) }
    }
    await torch.close() // a restart: the next round must resume from the file
    const [sa, sb] = [await stateOf(tsDir), await stateOf(torchDir)]
    assert.equal(sb.step, '20')
    assert.equal(sa.step, '20')
    assert.ok(relDiff(sb.m, sa.m) < 1e-3, `first moments ${relDiff(sb.m, sa.m)}`)

    const next = { ...unit, scheduleOffset: 23 }
    const a2 = await ts.train({ unit: next, base: a.params, batches, stateDir: tsDir, ...quiet })
    torch = await TorchExecutor.start({ device: 'cpu', threads: 1 })
    const b2 = await torch.train({ unit: next, base: a.params, batches, stateDir: torchDir, ...quiet })
    const update2 = relDiff(a2.params.map((p, i) => p - a.params[i]!), b2.params.map((p, i) => p - a.params[i]!))
    // 40 steps in, the float32/float64 difference has grown (measured 2.6e-4); resuming from
    // the file is exact (a resident and a restarted child give identical weights).
    assert.ok(update2 < 1e-3, `second round update difference ${update2}`)
    const tsState = await stateOf(tsDir)
    assert.equal(tsState.step, '40')
    assert.equal((await stateOf(torchDir)).step, '40')
    await ts.close()
  })

  test('a child killed mid-round is restarted and the round redone, with the result of an undisturbed run', async () => {
    const base = initParams(tiny, 3).flat
    const unit = syntheticUnit(tiny, { innerSteps: 60, batchSize: 4, seqLen: 32 })
    const batches = randomBatches(5, tiny.vocab_size, 4, 32)
    const clean = await torch.train({ unit, base, batches, stateDir: join(dir, 'crash-clean'), ...quiet })
    const victim = torch.childPid!
    let killed = false
    const restarted: TrainResult = await torch.train({
      unit,
      base,
      batches,
      stateDir: join(dir, 'crash-killed'),
      signal: new AbortController().signal,
      onProgress: (p) => {
        if (!killed) { killed = true; process.kill(victim, 'SIGKILL') }
      }
    })
    assert.ok(killed, 'the child was killed during the round')
    assert.equal(torch.restarts, 1)
    assert.notEqual(torch.childPid, victim)
    assert.deepEqual(restarted.lossCurve, clean.lossCurve)
    assert.deepEqual(restarted.params, clean.params)
  })

  test('on two ranks (--device cpu,cpu: data parallel inside the child) a round ends where one device ends; a rank killed mid-round is a crash the executor recovers from', async () => {
    const base = initParams(tiny, 5).flat
    const unit = syntheticUnit(tiny, { innerSteps: 30, batchSize: 6, seqLen: 32 })
    const batches = randomBatches(9, tiny.vocab_size, 6, 32)
    const one = await torch.train({ unit, base, batches, stateDir: join(dir, 'ranks-one'), ...quiet })
    const two = await TorchExecutor.start({ device: 'cpu,cpu', threads: 1 })
    try {
      assert.equal(two.kind, 'torch-cpu')
      assert.match(two.name, /on CPU \(1 thread × 2 ranks\)$/)
      assert.equal(two.rankPids.length, 2)
      assert.equal(two.devices, 2)
      // A batch of one row is taken too: the second rank steps on it weighted 0.
      const narrow = syntheticUnit(tiny, { innerSteps: 4, batchSize: 1, seqLen: 32 })
      assert.equal(await two.check(narrow), undefined)
      const narrowBatches = randomBatches(13, tiny.vocab_size, 1, 32)
      const narrowOne = await torch.train({ unit: narrow, base, batches: narrowBatches, stateDir: join(dir, 'ranks-narrow-one'), ...quiet })
      const narrowTwo = await two.train({ unit: narrow, base, batches: narrowBatches, stateDir: join(dir, 'ranks-narrow-two'), ...quiet })
      // Rank 1 had no row of its own: the report says one device trained it.
      assert.equal(narrowTwo.devices, undefined)
      const narrowGap = relDiff(narrowTwo.params.map((p, i) => p - base[i]!), narrowOne.params.map((p, i) => p - base[i]!))
      assert.ok(narrowGap < 1e-4, `two ranks on a one-row batch differ from one device by ${narrowGap}`)
      assert.equal(await two.check(unit), undefined)
      const clean = await two.train({ unit, base, batches, stateDir: join(dir, 'ranks-two'), ...quiet })
      assert.equal(clean.tokens, one.tokens)
      // The report says two devices trained it (its signed metadata carries the count).
      assert.equal(clean.devices, 2)
      assert.equal(one.devices, undefined)
      const moved = relDiff(clean.params.map((p, i) => p - base[i]!), one.params.map((p, i) => p - base[i]!))
      assert.ok(moved < 1e-4, `two ranks' update differs from one device's by ${moved}`)

      const victim = two.rankPids[1]!
      let killed = false
      const recovered = await two.train({
        unit,
        base,
        batches,
        stateDir: join(dir, 'ranks-killed'),
        signal: new AbortController().signal,
        onProgress: () => { if (!killed) { killed = true; process.kill(victim, 'SIGKILL') } }
      })
      assert.ok(killed, 'rank 1 was killed during the round')
      assert.equal(two.restarts, 1)
      assert.ok(!two.rankPids.includes(victim))
      assert.deepEqual(recovered.params, clean.params)
    } finally {
      await two.close()
    }
  })

  test('on two ranks with AdamW sharded over them (--shard-optimizer on, ZeRO-1) two rounds end where one device ends', async () => {
    const base = initParams(tiny, 6).flat
    const unit = syntheticUnit(tiny, { innerSteps: 12, batchSize: 4, seqLen: 32 })
    const batches = randomBatches(10, tiny.vocab_size, 4, 32)
    const lines: string[] = []
    const sharded = await TorchExecutor.start({ device: 'cpu,cpu', threads: 1, sharding: 'on', log: (line) => { lines.push(line) } })
    try {
      let oneBase = base
      let twoBase = base
      for (const scheduleOffset of [0, 12]) {
        const next = { ...unit, scheduleOffset }
        const one = await torch.train({ unit: next, base: oneBase, batches, stateDir: join(dir, 'zero-one'), ...quiet })
        const two = await sharded.train({ unit: next, base: twoBase, batches, stateDir: join(dir, 'zero-two'), ...quiet })
        const gap = relDiff(two.params.map((p, i) => p - twoBase[i]!), one.params.map((p, i) => p - oneBase[i]!))
        assert.ok(gap < 1e-4, `round at ${scheduleOffset}: the sharded update differs from one device's by ${gap}`)
        oneBase = one.params
        twoBase = two.params
      }
      assert.ok(lines.some((l) => l.includes("AdamW's moments are sharded over the 2 ranks")), lines.join('\n'))
      // The ranks' parts make the state file one device writes.
      const stateOf = async (d: string): Promise<{ step: string | undefined, v: Float32Array }> => {
        const f = decodeSafetensors(await readFile(join(d, 'inner-adamw.safetensors')))
        return { step: f.metadata.step, v: tensorToFloat32(f.tensors.get('v')!) }
      }
      const [a, b] = [await stateOf(join(dir, 'zero-one')), await stateOf(join(dir, 'zero-two'))]
      assert.equal(b.step, '24')
      assert.equal(a.step, '24')
      assert.ok(relDiff(b.v, a.v) < 1e-3, `second moments ${relDiff(b.v, a.v)}`)
    } finally {
      await sharded.close()
    }
  })

  test('refuses a unit that does not fit its memory, with the reason', async () => {
    // 100 MiB: the tiny model fits; the small one at batch 8 × 512 needs ~0.6 GiB, ~0.2 GiB even with checkpointing.
    const capped = await TorchExecutor.start({ device: 'cpu', threads: 1, memoryLimitBytes: 100 * 1024 * 1024 })
    try {
      const small = presetConfig('small')
      const large = syntheticUnit(small, { innerSteps: 1, batchSize: 8, seqLen: 512 })
      const refusal = await capped.check(large)
      assert.ok(refusal instanceof ExecutorError)
      assert.equal(refusal.code, 'ERR_UNIT_TOO_LARGE')
      assert.match(refusal.message, /needs about 0\.6 GiB \(0\.20M parameters.*batch 8 × seq 512 in float32\) but cpu has 0\.1 GiB of free host memory/)
      assert.equal(await capped.check(syntheticUnit(tiny, { innerSteps: 1, batchSize: 4, seqLen: 32 })), undefined)
      await assert.rejects(capped.train({ unit: large, base: initParams(small, 1).flat, batches: randomBatches(1, 256, 8, 512), stateDir: join(dir, 'too-large'), ...quiet }),
        (err: unknown) => err instanceof ExecutorError && err.code === 'ERR_UNIT_TOO_LARGE')
    } finally {
      await capped.close()
    }
  })

  test('an interpreter without torch (real python3 -S -I: no site-packages) is named with what to install', async () => {
    const python = torch.python
    await assert.rejects(TorchExecutor.start({ python, pythonFlags: ['-S', '-I'], device: 'cpu' }), (err: unknown) => {
      assert.ok(err instanceof ExecutorError)
      assert.equal(err.code, 'ERR_TORCH_MISSING')
      assert.match(err.message, /cannot import torch/)
      assert.match(err.message, /apt install python3-torch/)
      assert.match(err.message, /--python PATH/)
      return true
    })
  })

  test('a missing interpreter and a missing GPU say so', async () => {
    await assert.rejects(TorchExecutor.start({ python: join(dir, 'no-such-python') }), (err: unknown) =>
      err instanceof ExecutorError && err.code === 'ERR_PYTHON_MISSING' && /install Python/.test(err.message))
    const hasCuda = torch.ready.devices.some((d) => d.kind === 'cuda')
    const cuda = TorchExecutor.start({ python: torch.python, device: 'cuda' })
    if (hasCuda) {
      const gpu = await cuda
      assert.equal(gpu.kind, 'torch-cuda')
      await gpu.close()
    } else {
      await assert.rejects(cuda, (err: unknown) => err instanceof ExecutorError && err.code === 'ERR_CUDA_UNAVAILABLE' && /without CUDA|sees no usable GPU/.test(err.message))
    }
  })

  test('the Python package\'s own unit tests pass (python3 -m unittest)', () => {
    const result = spawnSync(torch.python, ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.'], { cwd: TORCH_EXECUTOR_DIR, encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })
    assert.equal(result.status, 0, result.stderr)
    assert.match(result.stderr, /^OK$/m)
  })

  test('the Python presets are the TypeScript presets', () => {
    const result = spawnSync(torch.python, ['-m', 'barnraise_torch.presets'], { cwd: TORCH_EXECUTOR_DIR, encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })
    assert.equal(result.status, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout), { ...modelPresets, ...gpuModelPresets })
  })
})

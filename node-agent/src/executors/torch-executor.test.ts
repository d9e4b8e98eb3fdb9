// The torch executor against the real Python child (Debian's python3-torch on the CPU in CI):
// known answers, parity with the TypeScript executor, a crashed child, and the errors a user
// meets first. Tiny models and few steps: CI has two cores.
import { afterAll, beforeAll, describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { decodeSafetensors, tensorToFloat32 } from '@barnraise/protocol'
import type { WorkUnit } from '@barnraise/protocol'
import { GOLDEN_DIR, countParams, demoCorpusShards, gpuModelPresets, initParams, modelPresets, presetConfig } from '@barnraise/trainer'
import { createBatchSource } from '../batch-source.ts'
import type { BatchSource, TrainResult } from './executor.ts'
import { ExecutorError, UNIT_REFUSAL_CODES } from './executor-error.ts'
import { TORCH_EXECUTOR_DIR, pythonCandidates } from '@barnraise/torch-executor'
import { TorchExecutor, deviceFitRefusal, deviceMemoryCap, torchHostBytes, torchRefusal, trainIdleMs, trainingHostCap } from './torch-executor.ts'
import type { TorchTimeouts } from './torch-executor.ts'
import { TypeScriptExecutor } from './typescript-executor.ts'
import { randomBatches, syntheticUnit } from './synthetic-unit.ts'
import { TorchChild } from './torch-child.ts'

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
    // A GPU cap of one byte means nothing on the CPU: --max-memory alone bounds it.
    const capped = await TorchExecutor.start({ device: 'cpu', threads: 1, hostMemoryLimitBytes: 100 * 1024 * 1024, gpuMemoryLimitBytes: 1 })
    try {
      assert.deepEqual(capped.deviceMemoryCap, { bytes: 100 * 1024 * 1024, flag: '--max-memory' })
      const small = presetConfig('small')
      const large = syntheticUnit(small, { innerSteps: 1, batchSize: 8, seqLen: 512 })
      const refusal = await capped.check(large)
      assert.ok(refusal instanceof ExecutorError)
      assert.equal(refusal.code, 'ERR_UNIT_TOO_LARGE')
      assert.match(refusal.message, /needs about 0\.6 GiB \(0\.20M parameters.*batch 8 × seq 512 in float32\) but cpu has 0\.1 GiB of free host memory/)
      assert.match(refusal.message, /or join with a larger --max-memory \(this node allows 0\.1 GiB\) or a larger GPU$/)
      assert.equal(await capped.check(syntheticUnit(tiny, { innerSteps: 1, batchSize: 4, seqLen: 32 })), undefined)
      await assert.rejects(capped.train({ unit: large, base: initParams(small, 1).flat, batches: randomBatches(1, 256, 8, 512), stateDir: join(dir, 'too-large'), ...quiet }),
        (err: unknown) => err instanceof ExecutorError && err.code === 'ERR_UNIT_TOO_LARGE')
    } finally {
      await capped.close()
    }
  })

  test('unit-caused failures in the child arrive as refusal codes the work loop declines with (token ids past the vocabulary)', async () => {
    const unit = syntheticUnit(tiny, { innerSteps: 2, batchSize: 2, seqLen: 8 })
    const base = initParams(tiny, 1).flat
    await assert.rejects(torch.train({ unit, base, batches: randomBatches(1, tiny.vocab_size + 5, 2, 8), stateDir: join(dir, 'bad-vocab'), ...quiet }), (err: unknown) => {
      assert.ok(err instanceof ExecutorError)
      assert.equal(err.code, 'ERR_BAD_INPUT')
      assert.match(err.message, /token ids must lie in \[0, 256\)/)
      assert.ok(UNIT_REFUSAL_CODES.has(err.code))
      return true
    })
    // The child is unharmed: the same unit with good batches trains.
    assert.equal((await torch.train({ unit, base, batches: randomBatches(1, tiny.vocab_size, 2, 8), stateDir: join(dir, 'bad-vocab'), ...quiet })).lossCurve.length, 2)
  })

  test('after a round, a unit that cannot finish before its deadline at the measured rate is refused as too slow', async () => {
    const unit = syntheticUnit(tiny, { innerSteps: 3, batchSize: 2, seqLen: 16 })
    await torch.train({ unit, base: initParams(tiny, 1).flat, batches: randomBatches(1, tiny.vocab_size, 2, 16), stateDir: join(dir, 'rate'), ...quiet })
    // 100 000 steps of batch 8 × 64 is 51M tokens: far more than the tiny model trains in 10 s on one thread.
    const long = { ...syntheticUnit(tiny, { innerSteps: 100_000, batchSize: 8, seqLen: 64 }), deadline: new Date(Date.now() + 10_000).toISOString() }
    assert.equal(await torch.check({ ...long, deadline: new Date(Date.now() + 365 * 86_400_000).toISOString() }), undefined)
    // A rate is its model's own: another model (small models run at lower FLOP/s) is left to the fit check.
    const wider = { ...tiny, intermediate_size: tiny.intermediate_size * 2 }
    assert.equal(await torch.check({ ...syntheticUnit(wider, { innerSteps: 100_000, batchSize: 8, seqLen: 64 }), deadline: long.deadline }), undefined)
    const refusal = await torch.check(long)
    assert.equal(refusal?.code, 'ERR_UNIT_TOO_SLOW')
    assert.match(refusal.message, /GFLOP\/s this node measured on its last round, but the round closes in \d+ s/)
    // One refusal spends the rate (a busy machine's slow round must not refuse every later unit).
    assert.equal(await torch.check(long), undefined)
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

// A stand-in for the server that misbehaves on cue, to drive the agent's end of the protocol
// through what a wedged or broken child does. Real processes and real frames; only the Python
// side is scripted. argv[1] names the behaviour.
const FAKE_CHILD = String.raw`
import json, os, struct, sys, threading, time
mode = sys.argv[1]
out = os.fdopen(os.dup(1), 'wb', buffering=0)
def send(frame):
    body = json.dumps(frame).encode()
    out.write(struct.pack('>I', len(body)) + body)
def read():
    head = sys.stdin.buffer.read(4)
    if len(head) < 4:
        return None
    return json.loads(sys.stdin.buffer.read(struct.unpack('>I', head)[0]))
send({'type': 'ready', 'protocol': 1, 'pid': os.getpid(), 'python': '3', 'executable': sys.executable, 'torch': '0.0-fake', 'cuda': None,
      'threads': 1, 'devices': [], 'device': 'cpu', 'features': {'sdpa': False, 'fusedAdamw': False, 'bf16': False, 'checkpointing': False}})
aborted = set()
def forever():
    while True:
        time.sleep(60)
def progress(rid, steps):
    for step in range(steps):
        if rid in aborted:
            send({'type': 'error', 'id': rid, 'code': 'ERR_ABORTED', 'message': 'aborted', 'retryable': False})
            return
        send({'type': 'progress', 'id': rid, 'step': step + 1, 'steps': 10 ** 6, 'loss': 1.0, 'tokensPerSecond': 1.0})
        time.sleep(0.6 if mode == 'slow' else 0.02)
    forever()
def reader():
    while True:
        frame = read()
        if frame is None:
            if mode in ('cooperative', 'slow'):
                os._exit(0)
            forever()
        if frame['type'] == 'abort':
            if mode != 'deaf':
                aborted.add(frame['id'])
            continue
        if frame['type'] == 'shutdown':
            if mode in ('cooperative', 'slow'):
                os._exit(0)
            continue
        rid = frame['id']
        if mode == 'silent':
            continue
        if mode == 'deaf' and frame['type'] != 'train':
            send({'type': 'log', 'message': 'got ' + frame['type']})
            continue
        if mode == 'fatal':
            send({'type': 'fatal', 'code': 'ERR_PROTOCOL', 'message': 'bad frame'})
        elif mode == 'nullid':
            send({'type': 'error', 'id': None, 'code': 'ERR_X', 'message': 'boom', 'retryable': False})
        elif mode == 'huge':
            out.write(struct.pack('>I', 2 ** 31))
        elif frame['type'] == 'fit':
            send({'type': 'result', 'id': rid, 'result': {'fits': True, 'checkpointing': False, 'needBytes': 1, 'freeBytes': 2, 'reason': '', 'precision': 'float32'}})
        elif frame['type'] == 'train':
            threading.Thread(target=progress, args=(rid, {'stall': 3, 'deaf': 1}.get(mode, 10 ** 6)), daemon=True).start()
threading.Thread(target=reader, daemon=True).start()
forever()
`

describe('torch executor against a misbehaving child', () => {
  let dir = ''
  let script = ''
  const python = pythonCandidates(undefined).at(-1)!
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'barnraise-fake-torch-'))
    script = join(dir, 'fake_child.py')
    await writeFile(script, FAKE_CHILD)
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }
  const fake = async (mode: string, timeouts: Partial<TorchTimeouts> = {}): Promise<TorchExecutor> =>
    await TorchExecutor.start({ python, pythonFlags: [script, mode], device: 'cpu', timeouts })
  const fakeChild = async (mode: string): Promise<TorchChild> => await TorchChild.start({ python, pythonFlags: [script, mode], device: 'cpu', threads: 1 })
  const unitOf = (innerSteps: number, deadline = new Date(Date.now() + 3_600_000)): WorkUnit =>
    ({ ...syntheticUnit(tiny, { innerSteps, batchSize: 2, seqLen: 8 }), deadline: deadline.toISOString() })
  const trainOn = async (executor: TorchExecutor, unit: WorkUnit, signal: AbortSignal, onProgress: () => void = () => {}): Promise<TrainResult> =>
    await executor.train({ unit, base: initParams(tiny, 1).flat, batches: randomBatches(1, tiny.vocab_size, 2, 8), stateDir: join(dir, 'state'), onProgress, signal })

  test('an abort rejects a pending train at once; a child that does not answer it is killed after the grace, and close() then returns (agent shutdown)', async () => {
    const executor = await fake('deaf', { abortGraceMs: 200 })
    const pid = executor.childPid!
    const controller = new AbortController()
    // The deaf child sends one progress frame, then ignores everything, the abort included.
    await assert.rejects(trainOn(executor, unitOf(5), controller.signal, () => { controller.abort(new Error('agent stopping')) }), /agent stopping/)
    assert.equal(alive(pid), true, 'rejected before the grace ran out')
    await executor.close()
    assert.equal(alive(pid), false, 'the wedged child is gone')
  })

  test('check() passes its signal to the fit request: an abort ends a fit the child never answers', async () => {
    const controller = new AbortController()
    // The deaf child logs that it has the request, then never answers it nor the abort.
    const executor = await TorchExecutor.start({
      python, pythonFlags: [script, 'deaf'], device: 'cpu', timeouts: { abortGraceMs: 200 },
      log: (line) => { if (line.includes('got fit')) controller.abort(new Error('stop')) }
    })
    const pid = executor.childPid!
    await assert.rejects(executor.check(unitOf(5), controller.signal), /stop/)
    await executor.close()
    assert.equal(alive(pid), false)
  })

  test('a fit the child never answers is bounded: the child is killed and restarted once, and a second hang declines the unit (ERR_UNIT_CRASHED)', async () => {
    const executor = await fake('silent', { controlMs: 300 })
    try {
      const first = executor.childPid!
      const refusal = await executor.check(unitOf(5))
      assert.ok(refusal instanceof ExecutorError)
      assert.equal(refusal.code, 'ERR_UNIT_CRASHED')
      assert.match(refusal.message, /did not answer for 0\.3 s on a fit request/)
      assert.ok(UNIT_REFUSAL_CODES.has(refusal.code), 'the work loop declines it')
      assert.equal(executor.restarts, 2)
      assert.equal(alive(first), false)
    } finally {
      await executor.close()
    }
  })

  test('a round that stops sending progress is killed by the watchdog, redone once, and then declined', async () => {
    const executor = await fake('stall', { trainIdleMs: 500 })
    try {
      const first = executor.childPid!
      await assert.rejects(trainOn(executor, unitOf(50), new AbortController().signal), (err: unknown) => {
        assert.ok(err instanceof ExecutorError)
        assert.equal(err.code, 'ERR_UNIT_CRASHED')
        assert.match(err.message, /sent no progress/)
        return true
      })
      assert.equal(executor.restarts, 2)
      assert.equal(alive(first), false)
    } finally {
      await executor.close()
    }
  })

  test('a round still running past its deadline and the margin is abandoned as too slow; a child that answers the abort is kept', async () => {
    const executor = await fake('cooperative', { deadlineMarginMs: 300 })
    try {
      const pid = executor.childPid!
      let steps = 0
      await assert.rejects(trainOn(executor, unitOf(10 ** 5, new Date(Date.now() - 1000)), new AbortController().signal, () => { steps++ }), (err: unknown) => {
        assert.ok(err instanceof ExecutorError)
        assert.equal(err.code, 'ERR_UNIT_TOO_SLOW')
        assert.ok(UNIT_REFUSAL_CODES.has(err.code))
        return true
      })
      assert.ok(steps > 0, 'it was training')
      // The child answered the abort: still the same process, and it serves the next request.
      assert.equal((await executor.fit(tiny, 2, 8)).fits, true)
      assert.equal(executor.childPid, pid)
      assert.equal(executor.restarts, 0)
    } finally {
      await executor.close()
    }
  })

  test('an abort waits for a step longer than the grace: a child whose inner steps are slow (a large model on a CPU) is kept, not killed', async () => {
    const executor = await fake('slow', { abortGraceMs: 200 })
    try {
      const pid = executor.childPid!
      const controller = new AbortController()
      let steps = 0
      // Steps of 0.6 s: the abort lands mid-step and the child notices it only at the next boundary.
      await assert.rejects(trainOn(executor, unitOf(10 ** 5), controller.signal, () => { if (++steps === 3) controller.abort(new Error('agent stopping')) }), /agent stopping/)
      assert.equal((await executor.fit(tiny, 2, 8)).fits, true, 'it answers the next request')
      assert.equal(executor.childPid, pid)
      assert.ok(alive(pid))
      assert.equal(executor.restarts, 0)
    } finally {
      await executor.close()
    }
  })

  for (const [mode, code, message] of [
    ['fatal', 'ERR_EXECUTOR', /ERR_PROTOCOL: bad frame/],
    ['nullid', 'ERR_EXECUTOR', /ERR_X: boom/],
    ['huge', 'ERR_CHILD_PROTOCOL', /frame \(cap/]
  ] as const) {
    test(`a child that answers with ${mode === 'huge' ? 'an oversized frame' : mode === 'fatal' ? 'a fatal frame' : 'an error for no request'} is killed, with that as the recorded cause`, async () => {
      const child = await fakeChild(mode)
      await assert.rejects(child.request({ type: 'fit' }), (err: unknown) => {
        assert.ok(err instanceof ExecutorError, String(err))
        assert.equal(err.code, code)
        assert.match(err.message, message)
        return true
      })
      assert.equal(child.dead, true)
      await child.exited
      assert.equal(alive(child.pid), false, 'the old child does not live on beside its replacement')
      await assert.rejects(child.request({ type: 'fit' }), (err: unknown) => err instanceof ExecutorError && err.code === code)
    })
  }
})

describe('what the torch executor refuses before asking the child', () => {
  test('more token batches than a node writes for a unit, a model larger than the agent holds, and a unit that cannot finish at the measured rate', () => {
    const many = syntheticUnit(tiny, { innerSteps: 100_000, batchSize: 64, seqLen: 512 })
    assert.equal(torchRefusal(many, undefined)?.code, 'ERR_UNIT_TOO_LARGE')
    assert.match(torchRefusal(many, undefined)!.message, /12\.2 GiB of token batches/)
    const wide = syntheticUnit({ ...tiny, vocab_size: 2 ** 22, hidden_size: 2 ** 17, num_attention_heads: 128 }, { innerSteps: 1, batchSize: 1, seqLen: 8 })
    assert.equal(torchRefusal(wide, undefined)?.code, 'ERR_UNIT_TOO_LARGE')
    const now = Date.parse('2030-01-01T00:00:00Z')
    const unit = { ...syntheticUnit(tiny, { innerSteps: 1000, batchSize: 8, seqLen: 64 }), deadline: new Date(now + 60_000).toISOString() }
    const flops = 6 * countParams(tiny) * 8 * 64 * 1000
    assert.equal(torchRefusal(unit, flops / 30, now), undefined, '30 s of 60')
    assert.equal(torchRefusal(unit, flops / 120, now)?.code, 'ERR_UNIT_TOO_SLOW', '120 s of 60')
    assert.equal(torchRefusal(unit, undefined, now), undefined, 'nothing measured yet: the child decides')
    assert.equal(torchRefusal({ ...unit, deadline: new Date(now - 1).toISOString() }, flops / 120, now), undefined, 'a past deadline is the coordinator\'s call')
  })

  test('--max-memory bounds the host memory the agent holds for a unit (its copies of the weights, Δ, the report and the batches), on any device', () => {
    const gpt = presetConfig('125m')
    const unit = syntheticUnit(gpt, { innerSteps: 100, batchSize: 8, seqLen: 1024 })
    const params = countParams(gpt)
    assert.equal(torchHostBytes(unit), 5 * 4 * params + 100 * 8 * 1025 * 4)
    assert.equal(torchHostBytes({ ...unit, codec: 'topk' }), 6 * 4 * params + 100 * 8 * 1025 * 4, 'a residual more with error feedback')
    assert.equal(torchRefusal(unit, undefined, Date.now(), torchHostBytes(unit)), undefined, 'exactly at the cap')
    const refusal = torchRefusal(unit, undefined, Date.now(), 2 * 2 ** 30)
    assert.equal(refusal?.code, 'ERR_UNIT_TOO_LARGE')
    assert.match(refusal!.message, /^the agent holds about \d+\.\d GiB of host memory for this unit \(the 124\.\d+M-parameter model's .*\); --max-memory allows 2\.0 GiB\. Join with a larger --max-memory/)
    assert.equal(torchRefusal(unit, undefined), undefined, 'no cap given: only the agent\'s parameter bound')
  })

  test('the device cap is --max-gpu-memory on CUDA and --max-memory on the CPU; on CUDA without --max-gpu-memory, --max-memory caps the GPU too', () => {
    const host = 16 * 2 ** 30
    const gpu = 20 * 2 ** 30
    assert.deepEqual(deviceMemoryCap(true, { hostMemoryLimitBytes: host, gpuMemoryLimitBytes: gpu }), { bytes: gpu, flag: '--max-gpu-memory' })
    assert.deepEqual(deviceMemoryCap(true, { gpuMemoryLimitBytes: gpu }), { bytes: gpu, flag: '--max-gpu-memory' })
    assert.deepEqual(deviceMemoryCap(true, { hostMemoryLimitBytes: host }), { bytes: host, flag: '--max-memory' }, 'an old `--device cuda --max-memory` keeps its GPU cap')
    assert.deepEqual(deviceMemoryCap(false, { hostMemoryLimitBytes: host, gpuMemoryLimitBytes: gpu }), { bytes: host, flag: '--max-memory' })
    assert.equal(deviceMemoryCap(false, { gpuMemoryLimitBytes: gpu }), undefined)
    assert.equal(deviceMemoryCap(true, {}), undefined)
  })

  test('a training unit\'s host copies are held to --max-memory, except on CUDA where --max-memory alone still means the GPU', () => {
    const host = 16 * 2 ** 30
    const gpu = 20 * 2 ** 30
    assert.equal(trainingHostCap(false, { hostMemoryLimitBytes: host }), host)
    assert.equal(trainingHostCap(true, { hostMemoryLimitBytes: host, gpuMemoryLimitBytes: gpu }), host, 'both given: each caps its own memory')
    assert.equal(trainingHostCap(true, { hostMemoryLimitBytes: host }), undefined, 'an old `--device cuda --max-memory` service file: its number was sized for the card')
    assert.equal(trainingHostCap(true, { gpuMemoryLimitBytes: gpu }), undefined)
    assert.equal(trainingHostCap(false, {}), undefined)
  })

  test('a unit the device does not fit is refused naming the flag that capped it', () => {
    const reason = 'the unit needs about 30.0 GiB (…) but cuda:0 has 20.0 GiB of free GPU memory'
    const gpu = deviceFitRefusal(reason, { bytes: 20 * 2 ** 30, flag: '--max-gpu-memory' }, true)
    assert.equal(gpu.code, 'ERR_UNIT_TOO_LARGE')
    assert.equal(gpu.message, `${reason}; lower the run's batch size or sequence length, or join with a larger --max-gpu-memory (this node allows 20.0 GiB of the GPU) or a larger GPU`)
    assert.match(deviceFitRefusal(reason, { bytes: 20 * 2 ** 30, flag: '--max-memory' }, true).message, /or join with --max-gpu-memory SIZE for the GPU alone \(--max-memory's 20\.0 GiB caps the GPU while --max-gpu-memory is not given\) or a larger GPU$/)
    assert.match(deviceFitRefusal(reason, { bytes: 2 ** 30, flag: '--max-memory' }, false).message, /or join with a larger --max-memory \(this node allows 1\.0 GiB\) or a larger GPU$/)
    assert.match(deviceFitRefusal(reason, undefined, true).message, /, or join with a larger GPU$/)
    assert.doesNotMatch(deviceFitRefusal(reason, undefined, true).message, /--max/)
  })

  test('a round may go without progress for three inner steps at the model\'s measured rate (1 GFLOP/s unmeasured), at least the floor', () => {
    const floor = 30 * 60_000
    assert.equal(trainIdleMs(floor, tiny, 8, 64, undefined), floor, 'a tiny step is far under the floor')
    const big = { ...tiny, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32_000 }
    const step = 6 * countParams(big) * 8 * 2048
    assert.equal(trainIdleMs(floor, big, 8, 2048, undefined), 3 * step / 1e9 * 1000, 'a 1B step on a slow CPU takes hours, unmeasured')
    assert.equal(trainIdleMs(floor, big, 8, 2048, step / 10), floor, 'measured at 10 steps a second: the floor')
  })
})

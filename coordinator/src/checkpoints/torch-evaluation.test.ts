// Validation losses measured by PyTorch in a child process (Debian's python3-torch on the CPU in
// CI): the TypeScript forward pass's number on a stored checkpoint, typed errors for every way the
// child can fail, the abort and the time limit killing it, and BackgroundEvaluation measuring on
// the worker thread instead when torch fails. Real processes: this file is in vitest.config.ts's
// PROCESS_FILES.
import { afterAll, beforeAll, describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseLlamaConfig } from '@barnraise/protocol'
import type { LlamaConfig } from '@barnraise/protocol'
import { demoCorpusShards, initialCheckpoint, lossOverBatches, paramSetFromSafetensors, presetConfig, storedCheckpointBytes, validationBatches, validationLoss } from '@barnraise/trainer'
import type { Logger } from '../log.ts'
import { openDatabase } from '../db/open-database.ts'
import type { OpenedDatabase } from '../db/open-database.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { createRun } from '../runs/runs.ts'
import { BackgroundEvaluation, TORCH_FAILURES_BEFORE_GIVING_UP, TYPESCRIPT_EVALUATOR } from './background-evaluation.ts'
import type { EvaluationJob } from './background-evaluation.ts'
import { pythonCandidates } from '@barnraise/torch-executor'
import { TorchEvaluationError, TorchEvaluator, chooseEvaluator, probeTorch, torchValidationLoss } from './torch-evaluation.ts'
import type { TorchEvaluationInput, TorchProbe } from './torch-evaluation.ts'

const tiny = presetConfig('tiny')
// Untied and multi-head, unlike tiny: lm_head travels as its own tensor.
const untied = parseLlamaConfig({ vocab_size: 256, hidden_size: 48, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 64, tie_word_embeddings: false })
const windows = { batches: 3, batchSize: 2, seqLen: 16 }

/** The held-out windows the coordinator would cut for a run on the demo corpus. */
async function corpusInput (config: LlamaConfig, seed: number): Promise<TorchEvaluationInput & { checkpoint: Uint8Array }> {
  const { validation } = await demoCorpusShards()
  return { config, checkpoint: (await initialCheckpoint(config, seed)).bytes, batches: validationBatches(validation.tokens, windows), batchSize: windows.batchSize, seqLen: windows.seqLen }
}

const relative = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b)
const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

// Runs as `python fake.py MODE -c BOOT DIR evaluate --config …`: the interpreter runs this file
// instead of the boot code, which only reaches it as arguments. It writes its pid and its
// arguments beside itself, so a test can see the process and the temporary folder it was given.
const FAKE_PYTHON = `import json, os, sys, time
here = os.path.dirname(os.path.abspath(sys.argv[0]))
mode = sys.argv[1]
with open(os.path.join(here, mode + '.pid'), 'w') as f:
    f.write(str(os.getpid()))
with open(os.path.join(here, mode + '.args'), 'w') as f:
    json.dump(sys.argv[2:], f)
if mode == 'sleep':
    time.sleep(600)
elif mode == 'no-torch':
    sys.stderr.write('Traceback (most recent call last):\\n  File "<string>", line 1, in <module>\\nModuleNotFoundError: No module named \\'torch\\'\\n')
    sys.exit(1)
elif mode == 'oom':
    print(json.dumps({'error': {'code': 'ERR_OUT_OF_MEMORY', 'message': 'cpu ran out of host memory (fake)'}}), flush=True)
    sys.exit(1)
elif mode == 'garbage':
    print('hello, not json')
elif mode == 'flood':
    sys.stdout.write('x' * (8 << 20))
    sys.stderr.write('y' * (8 << 20) + '\\nthe last words\\n')
    sys.exit(3)
`

let python = ''
let probe: TorchProbe
let dir = ''
let fake = ''

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'barnraise-torch-eval-'))
  fake = join(dir, 'fake_python.py')
  await writeFile(fake, FAKE_PYTHON)
  // The interpreter the coordinator would find (CI: /usr/bin/python3 with Debian's python3-torch).
  const failures: string[] = []
  for (const candidate of pythonCandidates(undefined)) {
    try {
      probe = await probeTorch({ python: candidate, device: 'cpu' })
      python = candidate
      break
    } catch (err) {
      failures.push(`${candidate}: ${(err as Error).message}`)
    }
  }
  assert.notEqual(python, '', `an interpreter with torch is needed for these tests: ${failures.join('; ')}`)
})
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

/** An empty folder for one call's temporary folders: each must be gone when the call ends. */
async function tempParent (name: string): Promise<string> {
  const parent = join(dir, name)
  await rm(parent, { recursive: true, force: true })
  await mkdir(parent)
  return parent
}

/** The last temp folder a fake was handed, read from its arguments. */
async function fakeTempFolder (mode: string): Promise<string> {
  const args = JSON.parse(await readFile(join(dir, `${mode}.args`), 'utf8')) as string[]
  return join(args[args.indexOf('--config') + 1]!, '..')
}

describe('torchValidationLoss', () => {
  test('the probe names the interpreter, torch and the device', () => {
    assert.match(probe.torch, /^\d+\.\d+/)
    assert.equal(probe.device, 'cpu')
    assert.equal(probe.deviceName, null)
  })

  test('a stored checkpoint\'s loss is the TypeScript forward pass\'s, within 1e-5 relative (tied GQA and untied models)', async () => {
    for (const [config, seed] of [[tiny, 3], [untied, 4]] as const) {
      const input = await corpusInput(config, seed)
      const expected = lossOverBatches(paramSetFromSafetensors(config, input.checkpoint), input.batches, windows)
      const parent = await tempParent('ok')
      const got = await torchValidationLoss({ python, device: 'cpu', threads: 1, tempDir: parent }, input)
      assert.ok(got.loss !== null)
      assert.ok(relative(got.loss, expected) < 1e-5, `torch ${got.loss}, TypeScript ${expected}`)
      assert.equal(got.device, 'cpu')
      assert.deepEqual(await readdir(parent), [], 'the temporary folder is removed')
    }
    // Different weights, different loss: the number comes from the file handed over.
    const a = await torchValidationLoss({ python, device: 'cpu', threads: 1 }, await corpusInput(tiny, 1))
    const b = await torchValidationLoss({ python, device: 'cpu', threads: 1 }, await corpusInput(tiny, 2))
    assert.notEqual(a.loss, b.loss)
  })

  test('a diverged checkpoint has no loss (null), as the event loop stores it', async () => {
    const input = await corpusInput(untied, 5)
    const params = paramSetFromSafetensors(untied, input.checkpoint)
    params.flat.fill(Number.POSITIVE_INFINITY)
    const got = await torchValidationLoss({ python, device: 'cpu', threads: 1 }, { ...input, checkpoint: storedCheckpointBytes(untied, params.flat) })
    assert.equal(got.loss, null)
  })

  test('a missing interpreter, one without torch, a truncated checkpoint and a child that crashes each give a typed error; the temporary folder goes', async () => {
    const input = await corpusInput(tiny, 6)
    const expectError = async (options: Parameters<typeof torchValidationLoss>[0], code: string, pattern: RegExp, payload = input): Promise<TorchEvaluationError> => {
      const parent = await tempParent('fail')
      let caught: unknown
      await torchValidationLoss({ ...options, tempDir: parent }, payload).catch((err: unknown) => { caught = err })
      assert.ok(caught instanceof TorchEvaluationError, `a TorchEvaluationError, not ${String(caught)}`)
      assert.equal(caught.code, code, caught.message)
      assert.match(caught.message, pattern)
      assert.deepEqual(await readdir(parent), [], 'the temporary folder is removed on failure too')
      return caught
    }
    await expectError({ python: join(dir, 'no-such-python') }, 'ERR_PYTHON_MISSING', /no Python interpreter at .*no-such-python.*--python PATH.*--evaluator typescript/)
    // The real interpreter with its site-packages hidden: no torch to import.
    await expectError({ python, pythonFlags: ['-S', '-I'] }, 'ERR_TORCH_MISSING', /cannot import (torch|numpy).*apt install python3-torch.*--python PATH/)
    // Something that is not our boot code at all, failing as a Python without torch does.
    await expectError({ python, pythonFlags: [fake, 'no-torch'] }, 'ERR_TORCH_MISSING', /No module named 'torch'.*--python PATH/)
    const truncated = await expectError({ python, device: 'cpu', threads: 1 }, 'ERR_TORCH_EVALUATION', /ERR_BAD_INPUT/, { ...input, checkpoint: input.checkpoint.subarray(0, input.checkpoint.length - 1000) })
    assert.equal(truncated.childCode, 'ERR_BAD_INPUT')
    const oom = await expectError({ python, pythonFlags: [fake, 'oom'] }, 'ERR_TORCH_EVALUATION', /ERR_OUT_OF_MEMORY.*ran out of host memory/)
    assert.equal(oom.childCode, 'ERR_OUT_OF_MEMORY')
    await expectError({ python, pythonFlags: [fake, 'garbage'] }, 'ERR_TORCH_EVALUATION', /answered something else than expected.*hello, not json/)
    // Megabytes on both streams: kept to their caps, the end of stderr in the message.
    const flood = await expectError({ python, pythonFlags: [fake, 'flood'] }, 'ERR_TORCH_EVALUATION', /exited with code 3; last output: .*the last words/)
    assert.ok(flood.message.length < 2000, `a message of ${flood.message.length} characters`)
    // A checkpoint that does not fit the config it comes with: the Python side's refusal, not a crash.
    await expectError({ python, device: 'cpu', threads: 1 }, 'ERR_TORCH_EVALUATION', /ERR_INVALID_CONFIG|ERR_BAD_INPUT/, { ...input, config: { ...tiny, vocab_size: 100 } })
  })

  test('the abort signal kills the child at once and rejects with its reason; the temporary folder goes', async () => {
    const input = await corpusInput(tiny, 7)
    const parent = await tempParent('abort')
    const controller = new AbortController()
    const started = Date.now()
    const call = torchValidationLoss({ python, pythonFlags: [fake, 'sleep'], tempDir: parent }, input, controller.signal)
    const pidFile = join(dir, 'sleep.pid')
    await rm(pidFile, { force: true })
    let pid = 0
    while (pid === 0) {
      assert.ok(Date.now() - started < 20_000, 'the fake child started')
      pid = Number(await readFile(pidFile, 'utf8').catch(() => '0'))
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.ok(alive(pid))
    assert.ok((await readdir(parent)).length === 1, 'the checkpoint is in its temporary folder while measured')
    const folder = await fakeTempFolder('sleep')
    assert.ok((await readdir(folder)).includes('model.safetensors'))
    const reason = new Error('the coordinator is stopping')
    controller.abort(reason)
    await assert.rejects(call, (err: unknown) => err === reason)
    assert.equal(alive(pid), false, 'the child is gone when the call returns')
    assert.deepEqual(await readdir(parent), [])
    assert.ok(Date.now() - started < 20_000)
    // An already aborted signal starts nothing.
    await assert.rejects(torchValidationLoss({ python, pythonFlags: [fake, 'sleep'], tempDir: parent }, input, controller.signal), (err: unknown) => err === reason)
  })

  test('an evaluation past its time limit is killed and says so', async () => {
    const input = await corpusInput(tiny, 8)
    await rm(join(dir, 'sleep.pid'), { force: true })
    const parent = await tempParent('timeout')
    await assert.rejects(torchValidationLoss({ python, pythonFlags: [fake, 'sleep'], tempDir: parent, timeoutMs: 1500 }, input), (err: unknown) =>
      err instanceof TorchEvaluationError && err.code === 'ERR_TORCH_EVALUATION_TIMEOUT' && /did not finish within 2 s/.test(err.message))
    assert.equal(alive(Number(await readFile(join(dir, 'sleep.pid'), 'utf8'))), false)
    assert.deepEqual(await readdir(parent), [])
  })
})

describe('choosing the evaluator (--evaluator)', () => {
  test('auto takes torch where an interpreter has it, else the worker thread; torch without one refuses', async () => {
    const lines: string[] = []
    const log = { info: (msg: string) => { lines.push(msg) }, warn: (msg: string) => { lines.push(msg) }, error: () => {}, child: () => log }
    const found = await chooseEvaluator('auto', { python, device: 'cpu' }, log)
    assert.equal(found.kind, 'torch')
    assert.match(lines.at(-1)!, /validation losses off the event loop: PyTorch .* on cpu/)
    const none = await chooseEvaluator('auto', { python: join(dir, 'no-such-python') }, log)
    assert.equal(none, TYPESCRIPT_EVALUATOR)
    assert.match(lines.at(-1)!, /TypeScript forward pass on a worker thread \(--evaluator auto found no torch/)
    assert.equal(await chooseEvaluator('typescript', { python }, log), TYPESCRIPT_EVALUATOR)
    await assert.rejects(chooseEvaluator('torch', { python, pythonFlags: ['-S', '-I'] }, log), (err: unknown) =>
      err instanceof TorchEvaluationError && err.code === 'ERR_TORCH_MISSING' && /^--evaluator torch: no interpreter can measure validation losses with torch/.test(err.message))
  })

  test('`coordinator serve --evaluator torch` with an interpreter lacking torch refuses to start, saying what to install', async () => {
    const dataDir = join(dir, 'serve')
    const cli = fileURLToPath(new URL('../cli.ts', import.meta.url))
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', cli, 'serve', '--data-dir', dataDir, '--http-port', '0', '--p2p-port', '0', '--evaluator', 'torch', '--python', join(dir, 'no-such-python')], {
      env: { ...process.env, DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe']
    })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
    assert.equal(code, 2, stderr)
    assert.match(stderr, /--evaluator torch: no interpreter can measure validation losses with torch \(no Python interpreter at .*no-such-python/)
    assert.match(stderr, /--evaluator typescript/)
  })
})

describe('BackgroundEvaluation with torch', () => {
  let database: OpenedDatabase
  let blobs: DiskBlobStore
  beforeAll(async () => {
    database = await openDatabase({ dataDir: 'memory://' })
    blobs = new DiskBlobStore(join(dir, 'blobs'))
  })
  afterAll(async () => { await database.close() })

  /** A run of the tiny model with a checkpoint row still without a loss, and the job that measures it. */
  async function checkpointToMeasure (seed: number, bytes?: (good: Uint8Array) => Uint8Array): Promise<{ job: EvaluationJob, expected: number, loss: () => Promise<number | null> }> {
    const { id: runId } = await createRun({ db: database.db, blobs }, { name: `torch evaluation ${seed}`, model: { preset: 'tiny' }, rounds: 2, evalBatches: windows.batches, recipe: { seqLen: windows.seqLen, batchSize: windows.batchSize } })
    const good = (await initialCheckpoint(tiny, seed)).bytes
    const sha = await blobs.put(bytes?.(good) ?? good)
    await database.db.insertInto('checkpoints').values({ sha256: sha, run_id: runId, round: 1, tokens_seen: 0, val_loss: null }).execute()
    const { validation } = await demoCorpusShards()
    const job = { runId, sha, config: tiny, batches: validationBatches(validation.tokens, windows), batchSize: windows.batchSize, seqLen: windows.seqLen }
    const loss = async (): Promise<number | null> => (await database.db.selectFrom('checkpoints').select('val_loss').where('sha256', '=', sha).where('run_id', '=', runId).executeTakeFirstOrThrow()).val_loss
    return { job, expected: validationLoss(paramSetFromSafetensors(tiny, good), validation.tokens, windows), loss }
  }

  function recorder (): { log: Logger, lines: Array<{ msg: string, fields?: Record<string, unknown> }> } {
    const lines: Array<{ msg: string, fields?: Record<string, unknown> }> = []
    const log: Logger = { info: (msg, fields) => { lines.push({ msg, fields }) }, warn: (msg, fields) => { lines.push({ msg, fields }) }, error: () => {}, child: () => log }
    return { log, lines }
  }

  test('torch measures the checkpoint: its loss is written, within 1e-5 of the TypeScript one', async () => {
    const { log, lines } = recorder()
    const evaluation = new BackgroundEvaluation({ db: database.db, blobs, log, torchMinFlops: 0, evaluator: async (signal) => await chooseEvaluator('auto', { python, device: 'cpu', threads: 1 }, log, signal) })
    const c = await checkpointToMeasure(11)
    evaluation.schedule(c.job)
    await evaluation.idle()
    const loss = await c.loss()
    assert.ok(loss !== null && relative(loss, c.expected) < 1e-5, `torch ${loss}, TypeScript ${c.expected}`)
    assert.ok(lines.some((l) => l.msg === 'checkpoint validated with PyTorch'), JSON.stringify(lines))
    assert.equal((await evaluation.evaluator()).kind, 'torch')
    await evaluation.stop()
  })

  test('a checkpoint below the torch threshold goes to the worker thread, and no evaluator is chosen for it', async () => {
    const { log, lines } = recorder()
    let chosen = 0
    const evaluation = new BackgroundEvaluation({
      db: database.db,
      blobs,
      log,
      torchMinFlops: 1e15,
      evaluator: async (signal) => { chosen++; return await chooseEvaluator('auto', { python, device: 'cpu', threads: 1 }, log, signal) }
    })
    const c = await checkpointToMeasure(12)
    evaluation.schedule(c.job)
    await evaluation.idle()
    assert.equal(await c.loss(), c.expected, 'the worker thread\'s loss, to the bit')
    assert.equal(chosen, 0, 'Python was never started for it')
    assert.ok(lines.some((l) => l.msg === 'checkpoint validated on a worker thread'), JSON.stringify(lines))
    await evaluation.stop()
  })

  test('a torch evaluation that fails is measured on the worker thread instead; after repeated failures torch is left alone', async () => {
    const { log, lines } = recorder()
    const crashing = new TorchEvaluator({ python, pythonFlags: [fake, 'oom'] }, probe)
    const evaluation = new BackgroundEvaluation({ db: database.db, blobs, log, torchMinFlops: 0, evaluator: crashing })
    const checkpoints = []
    for (let i = 0; i < TORCH_FAILURES_BEFORE_GIVING_UP + 1; i++) {
      const c = await checkpointToMeasure(20 + i)
      checkpoints.push(c)
      evaluation.schedule(c.job)
      await evaluation.idle()
    }
    for (const c of checkpoints) assert.equal(await c.loss(), c.expected, 'the worker thread\'s loss, to the bit')
    const fellBack = lines.filter((l) => l.msg.startsWith('torch evaluation failed; measuring this checkpoint on a worker thread'))
    assert.equal(fellBack.length, TORCH_FAILURES_BEFORE_GIVING_UP, 'the last checkpoint went straight to the worker thread')
    assert.equal(fellBack[0]!.fields?.code, 'ERR_TORCH_EVALUATION')
    assert.ok(lines.some((l) => /torch failed 3 checkpoints in a row/.test(l.msg)))
    assert.equal(await evaluation.evaluator(), TYPESCRIPT_EVALUATOR)
    await evaluation.stop()
  })

  test('a truncated checkpoint fails in torch and on the worker thread: no loss is written, the queue goes on', async () => {
    const { log, lines } = recorder()
    const measured: string[] = []
    const evaluation = new BackgroundEvaluation({ db: database.db, blobs, log, torchMinFlops: 0, evaluator: new TorchEvaluator({ python, device: 'cpu', threads: 1 }, probe), onMeasured: (runId) => { measured.push(runId) } })
    const bad = await checkpointToMeasure(30, (good) => good.slice(0, good.length - 4096))
    const good = await checkpointToMeasure(31)
    evaluation.schedule(bad.job)
    evaluation.schedule(good.job)
    await evaluation.idle()
    assert.equal(await bad.loss(), null)
    assert.ok(lines.some((l) => l.msg.startsWith('torch evaluation failed') && l.fields?.sha === bad.job.sha))
    assert.ok(lines.some((l) => l.msg === 'checkpoint validation failed' && l.fields?.sha === bad.job.sha))
    const loss = await good.loss()
    assert.ok(loss !== null && relative(loss, good.expected) < 1e-5)
    assert.deepEqual(measured, [good.job.runId])
    await evaluation.stop()
  })

  test('stop() kills a torch evaluation in progress and writes nothing', async () => {
    const { log } = recorder()
    const evaluation = new BackgroundEvaluation({ db: database.db, blobs, log, torchMinFlops: 0, evaluator: new TorchEvaluator({ python, pythonFlags: [fake, 'sleep'] }, probe) })
    const c = await checkpointToMeasure(40)
    await rm(join(dir, 'sleep.pid'), { force: true })
    evaluation.schedule(c.job)
    let pid = 0
    for (let i = 0; i < 1000 && pid === 0; i++) {
      pid = Number(await readFile(join(dir, 'sleep.pid'), 'utf8').catch(() => '0'))
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.ok(pid > 0 && alive(pid))
    await evaluation.stop()
    assert.equal(alive(pid), false)
    assert.equal(await c.loss(), null, 'no fallback after a stop')
  })
})

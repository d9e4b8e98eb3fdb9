// A checkpoint's validation loss measured by PyTorch: `python3 -m barnraise_torch.evaluate` as one
// short-lived child process per checkpoint (torch-executor/README.md, "Held-out losses"). The
// TypeScript forward pass runs at about 1.6 GFLOP/s a core, so a 125M model's checkpoint takes
// hours on the background worker thread and a GPU-sized run shows no loss curve; torch on the same
// CPU is tens of times faster, on a GPU thousands. Same windows, same float32 math (IEEE matmuls,
// no TF32 or bf16), so its number agrees with the TypeScript one to float32 rounding, not to the bit.
//
// One process per checkpoint rather than a resident child like the agent's: a checkpoint arrives
// once a round at most, the model is rebuilt for every request anyway, and a process that exits
// gives its (GPU) memory back between checkpoints. The coordinator does not import node-agent, so
// the child is located and booted here the way node-agent/src/executors/torch-child.ts does it.
import { spawn } from 'node:child_process'
import { availableParallelism, setPriority, tmpdir } from 'node:os'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { CodedError, encodeSafetensors } from '@barnraise/protocol'
import type { LlamaConfig } from '@barnraise/protocol'
import { TORCH_EXECUTOR_DIR, pythonCandidates } from '@barnraise/torch-executor'
import { forwardFlopsPerToken, huggingFaceConfigJson } from '@barnraise/trainer'
import type { Logger } from '../log.ts'
import { TYPESCRIPT_EVALUATOR } from './background-evaluation.ts'
import type { CheckpointEvaluator, CheckpointSource, EvaluationJob } from './background-evaluation.ts'

export type TorchEvaluationErrorCode =
  /** the interpreter does not exist or cannot be started */
  | 'ERR_PYTHON_MISSING'
  /** it runs, but cannot import torch or numpy (or they, or Python, are too old) */
  | 'ERR_TORCH_MISSING'
  /** the evaluation itself failed: out of memory, a crash, bad input, no CUDA, a malformed answer */
  | 'ERR_TORCH_EVALUATION'
  /** it ran past its time limit and was killed */
  | 'ERR_TORCH_EVALUATION_TIMEOUT'

/** Why torch could not measure a loss; `childCode` is the Python side's own code when it gave one (ERR_OUT_OF_MEMORY…). */
export class TorchEvaluationError extends CodedError<TorchEvaluationErrorCode> {
  readonly childCode: string | undefined
  constructor (code: TorchEvaluationErrorCode, message: string, childCode?: string) {
    super(code, message)
    this.childCode = childCode
  }
}

/** How to run the Python side. */
export interface TorchEvaluationOptions {
  /** The interpreter (a path, or a name on PATH). */
  python: string
  /** Interpreter flags before the boot code (tests pass -S -I to hide site-packages). */
  pythonFlags?: string[]
  /** auto (first CUDA device, else the CPU), cpu, cuda or cuda:N. */
  device?: string
  /** CPU threads for torch; default all cores but one, which stays with the event loop. */
  threads?: number
  /** Where the private temporary folder of each evaluation is made (default the OS's). */
  tempDir?: string
  /** Limit on one evaluation; default from its FLOPs (`evaluationTimeoutMs`). */
  timeoutMs?: number
}

/** What an interpreter said about itself when probed. */
export interface TorchProbe {
  python: string
  executable: string
  torch: string
  /** The device evaluations will run on: cpu or cuda:N. */
  device: string
  /** The GPU's name when `device` is one. */
  deviceName: string | null
}

/** The token windows of one evaluation: what `validationBatches` cut for the checkpoint's run. */
export interface TorchEvaluationInput {
  config: LlamaConfig
  /** The stored checkpoint: F32 safetensors with Hugging Face Llama names, read by the Python side as is; its bytes, or a stream of them. */
  checkpoint: Uint8Array | (() => Readable)
  batches: readonly Int32Array[]
  batchSize: number
  seqLen: number
}

/** What one evaluation measured. */
export interface TorchEvaluationResult {
  /** The mean held-out loss; null when it is not finite (a diverged model). */
  loss: number | null
  /** Seconds the Python side spent measuring (model built, weights loaded, forward passes). */
  seconds: number
  device: string
}

/** How long a probe may take: importing torch takes about a second, a first CUDA call a few more. */
export const PROBE_TIMEOUT_MS = 60_000

/** What the child's stdout may hold (one JSON line is expected) and how much of stderr is kept for messages. */
const STDOUT_CAP_BYTES = 64 * 1024
const STDERR_TAIL_BYTES = 8 * 1024

// Runs barnraise_torch from TORCH_EXECUTOR_DIR whatever the interpreter's flags (-I drops the
// script's folder and PYTHONPATH from sys.path, so the folder is added here) and turns a missing
// torch or numpy, or a Python too old, into the CLI's own error line instead of a traceback.
// argv: [-c, TORCH_EXECUTOR_DIR, 'probe', DEVICE] or [-c, TORCH_EXECUTOR_DIR, 'evaluate', ...CLI flags].
const BOOT = `import json, sys
def fail(code, message):
    print(json.dumps({'error': {'code': code, 'message': message}}), flush=True)
    sys.exit(1)
if sys.version_info < (3, 9):
    fail('ERR_PYTHON_TOO_OLD', sys.executable + ' is Python ' + sys.version.split()[0] + '; barnraise_torch needs 3.9 or newer')
try:
    import numpy, torch
except ImportError as err:
    fail('ERR_TORCH_MISSING', f'{sys.executable} (Python {sys.version.split()[0]}) cannot import {err.name or "torch"} ({err})')
sys.path.insert(0, sys.argv[1])
from barnraise_torch.server import MIN_TORCH, _torch_version_tuple
if _torch_version_tuple(torch.__version__) < MIN_TORCH:
    fail('ERR_TORCH_TOO_OLD', f'{sys.executable} has torch {torch.__version__}; barnraise_torch needs {MIN_TORCH[0]}.{MIN_TORCH[1]} or newer')
from barnraise_torch import evaluate
from barnraise_torch.device import resolve_device
from barnraise_torch.errors import ExecutorFailure
if sys.argv[2] == 'probe':
    try:
        device = resolve_device(sys.argv[3])
        name = torch.cuda.get_device_name(device) if device.type == 'cuda' else None
    except ExecutorFailure as err:
        fail(err.code, err.message)
    print(json.dumps({'probe': {'python': sys.version.split()[0], 'executable': sys.executable, 'torch': torch.__version__, 'device': str(device), 'deviceName': name}}), flush=True)
    sys.exit(0)
sys.exit(evaluate.main(sys.argv[3:]))
`

const childErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) })
const probeSchema = z.object({
  probe: z.object({ python: z.string(), executable: z.string(), torch: z.string(), device: z.string(), deviceName: z.string().nullable() })
})
const resultSchema = z.object({
  losses: z.array(z.number().nullable()).length(1),
  batches: z.number().int(),
  batchSize: z.number().int(),
  seqLen: z.number().int(),
  seconds: z.number(),
  device: z.string(),
  attention: z.string()
})

/** What to tell an operator whose interpreter lacks torch. */
const INSTALL_TORCH = 'install torch (`sudo apt install python3-torch` on Debian/Ubuntu for the CPU, or a CUDA build from https://pytorch.org/get-started/locally/), ' +
  'pass --python PATH to an interpreter that has it, or use --evaluator typescript'

/**
 * The longest one evaluation may take: two minutes to start, plus its forward passes at
 * 1 GFLOP/s. torch on any CPU is faster than that; slower than the TypeScript worker thread
 * (1.6 GFLOP/s a core) means it is stuck, and the checkpoint is better measured there.
 */
export function evaluationTimeoutMs (input: Pick<TorchEvaluationInput, 'config' | 'batches' | 'batchSize' | 'seqLen'>): number {
  const flops = input.batches.length * input.batchSize * input.seqLen * forwardFlopsPerToken(input.config, input.seqLen)
  return 120_000 + Math.ceil(flops / 1e9 * 1000)
}

/** Checks that `python` can run barnraise_torch with torch on `device` (bounded by `timeoutMs`); throws a TorchEvaluationError saying what to install. */
export async function probeTorch (o: Pick<TorchEvaluationOptions, 'python' | 'pythonFlags' | 'device'>, timeoutMs = PROBE_TIMEOUT_MS, signal?: AbortSignal): Promise<TorchProbe> {
  const out = await runPython(o, ['probe', o.device ?? 'auto'], { timeoutMs, signal, what: 'the torch probe' })
  return parseAnswer(o.python, out, probeSchema, 'the torch probe').probe
}

/**
 * The held-out loss of `input.checkpoint` over its windows, measured by `python -m
 * barnraise_torch.evaluate` in a private temporary folder that is removed however the call ends.
 * Aborting `signal` kills the child and rejects with the signal's reason; other failures reject
 * with a TorchEvaluationError. The checkpoint's bytes are only read.
 */
export async function torchValidationLoss (o: TorchEvaluationOptions, input: TorchEvaluationInput, signal?: AbortSignal): Promise<TorchEvaluationResult> {
  signal?.throwIfAborted()
  // The folder is ours alone (mkdtemp makes it 0700): the weights are the run's, not the machine's.
  const dir = await mkdtemp(join(o.tempDir ?? tmpdir(), 'barnraise-eval-'))
  try {
    const paths = await writeEvaluationFiles(dir, input)
    const threads = o.threads ?? Math.max(1, availableParallelism() - 1)
    const args = ['evaluate', '--config', paths.config, '--weights', paths.weights, '--windows', paths.windows, '--device', o.device ?? 'auto', '--threads', String(threads)]
    const out = await runPython(o, args, { timeoutMs: o.timeoutMs ?? evaluationTimeoutMs(input), signal, what: 'the torch evaluation', background: true })
    const result = parseAnswer(o.python, out, resultSchema, 'the torch evaluation')
    if (result.batches !== input.batches.length || result.batchSize !== input.batchSize || result.seqLen !== input.seqLen) {
      throw new TorchEvaluationError('ERR_TORCH_EVALUATION', `the torch evaluation measured ${result.batches} × ${result.batchSize} windows of ${result.seqLen} tokens, not the ${input.batches.length} × ${input.batchSize} of ${input.seqLen} it was given`)
    }
    return { loss: result.losses[0]!, seconds: result.seconds, device: result.device }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * Writes what `python -m barnraise_torch.evaluate` reads into `dir`: config.json (Hugging Face
 * keys), the checkpoint as stored, and the windows as integer `tokens` [batches, batchSize,
 * seqLen + 1]. Also how scripts/gpu-check/prepare.ts writes the GPU machine's evaluation.
 */
export async function writeEvaluationFiles (dir: string, input: TorchEvaluationInput): Promise<{ config: string, weights: string, windows: string }> {
  const { batchSize, seqLen } = input
  const window = seqLen + 1
  const windows = new Int32Array(input.batches.length * batchSize * window)
  input.batches.forEach((ids, b) => {
    if (ids.length !== batchSize * window) throw new TypeError(`batch ${b} holds ${ids.length} token ids, not batchSize × (seqLen + 1) = ${batchSize * window}`)
    windows.set(ids, b * batchSize * window)
  })
  const paths = { config: join(dir, 'config.json'), weights: join(dir, 'model.safetensors'), windows: join(dir, 'windows.safetensors') }
  await writeFile(paths.config, JSON.stringify(huggingFaceConfigJson(input.config, 'F32')))
  // Written as stored: an F32 safetensors file with Hugging Face names is what the Python reader takes.
  if (typeof input.checkpoint === 'function') await pipeline(input.checkpoint(), createWriteStream(paths.weights))
  else await writeFile(paths.weights, input.checkpoint)
  await writeFile(paths.windows, encodeSafetensors(new Map([['tokens', { dtype: 'I32', shape: [input.batches.length, batchSize, window], data: new Uint8Array(windows.buffer) }]])))
  return paths
}

/** How a child process ended: its stdout (capped) and the tail of its stderr. */
interface PythonRun { stdout: string, stderrTail: string, code: number | null, signal: NodeJS.Signals | null }

/**
 * Runs the boot code with `args` and resolves once the process has exited (so its memory, GPU
 * memory included, is free), whatever its exit code; rejects when it cannot start, runs past
 * `timeoutMs` or `signal` is aborted, each after the child was killed and reaped.
 */
async function runPython (o: Pick<TorchEvaluationOptions, 'python' | 'pythonFlags'>, args: string[], opts: { timeoutMs: number, signal: AbortSignal | undefined, what: string, background?: boolean }): Promise<PythonRun> {
  const { signal } = opts
  signal?.throwIfAborted()
  const proc = spawn(o.python, [...(o.pythonFlags ?? []), '-c', BOOT, TORCH_EXECUTOR_DIR, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }
  })
  if (opts.background === true && proc.pid !== undefined) {
    // Background work: the coordinator's own event loop goes first on a busy CPU.
    try { setPriority(proc.pid, 10) } catch { /* not permitted here: it runs at normal priority */ }
  }
  let stdout = ''
  let stdoutBytes = 0
  let stderrTail = ''
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    // The answer is one short line; anything past the cap is not it.
    if (stdoutBytes < STDOUT_CAP_BYTES) stdout += chunk.slice(0, STDOUT_CAP_BYTES - stdoutBytes)
    stdoutBytes += chunk.length
  })
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES) })
  let stopped: Error | undefined
  const kill = (why: Error): void => {
    stopped ??= why
    proc.kill('SIGKILL')
  }
  const onAbort = (): void => { kill(signal?.reason instanceof Error ? signal.reason : new Error(String(signal?.reason ?? 'aborted'))) }
  signal?.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => {
    kill(new TorchEvaluationError('ERR_TORCH_EVALUATION_TIMEOUT', `${opts.what} (${o.python}) did not finish within ${Math.round(opts.timeoutMs / 1000)} s and was stopped; ` +
      `last output: ${lastLines(stderrTail)}`))
  }, opts.timeoutMs)
  try {
    const ended = await new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve, reject) => {
      proc.once('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'ENOENT'
          ? new TorchEvaluationError('ERR_PYTHON_MISSING', `no Python interpreter at "${o.python}"; ${INSTALL_TORCH}`)
          : new TorchEvaluationError('ERR_PYTHON_MISSING', `could not start "${o.python}" (${err.message}); ${INSTALL_TORCH}`))
      })
      // 'close', not 'exit': by then stdout and stderr are read to their end.
      proc.once('close', (code, sig) => { resolve({ code, signal: sig }) })
    })
    // An abort reaches the caller as the signal's reason, as a worker thread's does (worker-call.ts).
    if (signal?.aborted === true) throw signal.reason
    if (stopped !== undefined) throw stopped
    return { stdout, stderrTail, ...ended }
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}

/** The child's answer on its last stdout line, parsed with `schema`; its error line, or a crash, as a TorchEvaluationError. */
function parseAnswer<T> (python: string, run: PythonRun, schema: z.ZodType<T>, what: string): T {
  const line = run.stdout.trim().split('\n').at(-1) ?? ''
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    json = undefined
  }
  const failed = childErrorSchema.safeParse(json)
  if (failed.success) {
    const { code, message } = failed.data.error
    if (code === 'ERR_TORCH_MISSING' || code === 'ERR_TORCH_TOO_OLD' || code === 'ERR_PYTHON_TOO_OLD') {
      return throwError(new TorchEvaluationError('ERR_TORCH_MISSING', `${message}; ${INSTALL_TORCH}`, code))
    }
    const hint = code === 'ERR_OUT_OF_MEMORY' ? ' (free memory on that device, or choose another with --eval-device)' : code === 'ERR_CUDA_UNAVAILABLE' ? ' (or pass --eval-device cpu)' : ''
    return throwError(new TorchEvaluationError('ERR_TORCH_EVALUATION', `${what} failed: ${code}: ${message}${hint}`, code))
  }
  if (run.code === 0) {
    const parsed = schema.safeParse(json)
    if (parsed.success) return parsed.data
    const why = json === undefined ? 'not a JSON line' : parsed.error.issues[0]?.message ?? 'no detail'
    return throwError(new TorchEvaluationError('ERR_TORCH_EVALUATION', `${what} (${python}) answered something else than expected (${why}): ${line.slice(0, 200) || '(nothing)'}`))
  }
  // No answer: a traceback, the kernel's OOM killer, or not a Python at all.
  const how = run.signal !== null ? `was killed by ${run.signal}${run.signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exited with code ${run.code}`
  const output = lastLines(run.stderrTail || run.stdout)
  if (/No module named '?(torch|numpy)|cannot import .*torch/i.test(output)) {
    return throwError(new TorchEvaluationError('ERR_TORCH_MISSING', `${python} cannot import torch (${output}); ${INSTALL_TORCH}`))
  }
  return throwError(new TorchEvaluationError('ERR_TORCH_EVALUATION', `${what} (${python}) ${how}; last output: ${output}`))
}

function throwError (err: Error): never {
  throw err
}

/** The last few lines of a process's output, on one line. */
function lastLines (text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim() !== '').slice(-4)
  return lines.length === 0 ? '(none)' : lines.join(' | ').slice(-1000)
}

/** Measures checkpoints with torch; what BackgroundEvaluation runs when the probe found an interpreter with it. */
export class TorchEvaluator implements CheckpointEvaluator {
  readonly kind = 'torch'
  readonly name: string
  readonly #o: TorchEvaluationOptions

  constructor (options: TorchEvaluationOptions, probe: TorchProbe) {
    this.#o = { ...options, device: probe.device }
    this.name = `PyTorch ${probe.torch} on ${probe.deviceName ?? probe.device} (${options.python})`
  }

  /** The checkpoint's loss, null when not finite; a TorchEvaluationError when torch could not measure it. */
  async measure (job: EvaluationJob, checkpoint: CheckpointSource, signal: AbortSignal): Promise<number | null> {
    return (await torchValidationLoss(this.#o, { config: job.config, checkpoint: checkpoint.stream, batches: job.batches, batchSize: job.batchSize, seqLen: job.seqLen }, signal)).loss
  }
}

/** Which evaluator measures validation losses off the event loop: `--evaluator`. */
export type EvaluatorMode = 'auto' | 'typescript' | 'torch'

/**
 * The evaluator `mode` asks for. `typescript`: the worker thread. `torch` and `auto` probe each
 * candidate interpreter once (bounded) and take the first that imports torch and reaches the
 * device; when none does, `torch` throws a TorchEvaluationError saying what to install and `auto`
 * settles for the worker thread. The choice and its reason are logged.
 */
export async function chooseEvaluator (mode: EvaluatorMode, options: Omit<TorchEvaluationOptions, 'python'> & { python?: string }, log: Logger, signal?: AbortSignal): Promise<CheckpointEvaluator> {
  if (mode === 'typescript') {
    log.info('validation losses off the event loop: the TypeScript forward pass on a worker thread (--evaluator typescript)')
    return TYPESCRIPT_EVALUATOR
  }
  const tried: Array<{ python: string, err: TorchEvaluationError }> = []
  for (const python of pythonCandidates(options.python)) {
    try {
      const probe = await probeTorch({ ...options, python }, PROBE_TIMEOUT_MS, signal)
      const evaluator = new TorchEvaluator({ ...options, python }, probe)
      log.info(`validation losses off the event loop: ${evaluator.name}`, { evaluator: 'torch', python: probe.executable, torch: probe.torch, device: probe.device })
      return evaluator
    } catch (err) {
      if (!(err instanceof TorchEvaluationError)) throw err
      tried.push({ python, err })
    }
  }
  const why = tried.map((t) => tried.length === 1 ? t.err.message : `${t.python}: ${t.err.message}`).join('; ')
  if (mode === 'torch') {
    const code = tried.find((t) => t.err.code !== 'ERR_PYTHON_MISSING')?.err.code ?? 'ERR_PYTHON_MISSING'
    throw new TorchEvaluationError(code, `--evaluator torch: no interpreter can measure validation losses with torch (${why})`)
  }
  // Not an error: small models never need it. But a large model's checkpoints take hours each there.
  log.info('validation losses off the event loop: the TypeScript forward pass on a worker thread (--evaluator auto found no torch: a 125M model\'s checkpoint takes hours there)', { evaluator: 'typescript', why })
  return TYPESCRIPT_EVALUATOR
}

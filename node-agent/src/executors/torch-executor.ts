import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { parseLlamaConfig } from '@barnraise/protocol'
import type { LlamaConfig, WorkUnit } from '@barnraise/protocol'
import { pythonCandidates } from '@barnraise/torch-executor'
import { TORCH_MAX_PARAMS, countParams, forwardFlopsPerToken } from '@barnraise/trainer'
import type { Executor, ExecutorKind, TrainRequest, TrainResult } from './executor.ts'
import { ExecutorError } from './executor-error.ts'
import { readWeightsFile, writeBatchesFile, writeWeightsFile } from './tensor-files.ts'
import { usesErrorFeedback } from '../error-feedback.ts'
import { TorchChild } from './torch-child.ts'
import type { RequestOptions, TorchDevice, TorchReady } from './torch-child.ts'

/** How long the agent waits on the child; torch-executor/README.md ("Deadlines") says why each is what it is. */
export interface TorchTimeouts {
  /** fit, flush, measure and golden requests: a fit is arithmetic, a flush one state write, a measurement a few steps */
  controlMs: number
  /** a train request with no progress frame for this long (loading a large model, or one slow step, stays well inside) */
  trainIdleMs: number
  /** how long past the unit's deadline a round may run before it is abandoned as too slow */
  deadlineMarginMs: number
  /** after an abort, how long the child may take to answer before it is killed */
  abortGraceMs: number
}

export const DEFAULT_TORCH_TIMEOUTS: TorchTimeouts = {
  controlMs: 10 * 60_000,
  trainIdleMs: 30 * 60_000,
  deadlineMarginMs: 15 * 60_000,
  abortGraceMs: 10_000
}

// The most parameters the agent takes a unit (or a scoring task) for: trainer's cost.ts, where
// the coordinator reads it too.
export { TORCH_MAX_PARAMS }

/**
 * The most bytes of token batches a unit may need on disk (innerSteps × batch × (seqLen + 1) × 4).
 * 2^31 tokens: a thousand steps of batch 256 × 8192 fits; a coordinator cannot make a node
 * write 13 GB by asking for 100 000 steps of a tiny model.
 */
export const TORCH_MAX_BATCH_BYTES = 8 * 1024 ** 3

// setTimeout fires at once past this (about 24.8 days).
const MAX_TIMER_MS = 2 ** 31 - 1

/** The slowest FLOP/s assumed of a model not trained here yet, for how long one inner step may take. */
const SLOWEST_FLOPS = 1e9

/** Which model a measured rate belongs to. */
function rateKey (config: LlamaConfig): string {
  return JSON.stringify(config)
}

/**
 * How long a train request may go without a progress frame: `floorMs`, or three inner steps
 * at the rate measured for this model (1 GFLOP/s when none is), whichever is longer. A 1B
 * model's step on a CPU takes tens of minutes; the unit's deadline still bounds the whole round.
 */
export function trainIdleMs (floorMs: number, config: LlamaConfig, batchSize: number, seqLen: number, flopsPerSecond: number | undefined): number {
  const stepSeconds = 6 * countParams(config) * batchSize * seqLen / (flopsPerSecond !== undefined && flopsPerSecond > 0 ? flopsPerSecond : SLOWEST_FLOPS)
  return Math.min(Math.max(floorMs, 3 * stepSeconds * 1000), MAX_TIMER_MS)
}

const gib = (bytes: number): string => (bytes / 2 ** 30).toFixed(1)

/**
 * Host memory the agent itself holds for a torch unit, whatever device the child trains on: the
 * base checkpoint as fetched, the base weights, θ_local read back from the child, Δ and the
 * encoded report (up to Δ's size), 4 bytes a parameter each, one more model-sized residual for a
 * codec with error feedback (work-loop.ts holds them together while it encodes the report), and
 * the unit's token batches (4 bytes a token at most). What --max-memory bounds for torch on CUDA,
 * and what the child's plan leaves to the agent on the CPU.
 */
export function torchHostBytes (unit: WorkUnit): number {
  const copies = 5 + (usesErrorFeedback(unit.codec) ? 1 : 0)
  const r = unit.recipe
  return copies * 4 * countParams(unit.modelConfig) + r.innerSteps * r.batchSize * (r.seqLen + 1) * 4
}

/** A cap on memory and the flag that set it, for refusals to name. */
export interface MemoryCap { bytes: number, flag: '--max-memory' | '--max-gpu-memory' }

/**
 * The cap the torch child plans its device with: --max-gpu-memory on CUDA, --max-memory on the
 * CPU (whose memory is the host's; --max-gpu-memory means nothing there). On CUDA without
 * --max-gpu-memory, --max-memory caps the GPU (and not a training unit's host copies: trainingHostCap). Until --max-gpu-memory existed --max-memory
 * was the GPU's cap on CUDA, so a service file written then (`--device cuda --max-memory 20GiB`
 * on a shared GPU) must keep its GPU bound after an upgrade: dropping it would silently let the
 * child plan with the whole card, and refusing the flag would take every such node offline at
 * once. join says so in one line and how to split the two.
 */
export function deviceMemoryCap (onCuda: boolean, limits: { hostMemoryLimitBytes?: number | undefined, gpuMemoryLimitBytes?: number | undefined }): MemoryCap | undefined {
  if (onCuda && limits.gpuMemoryLimitBytes !== undefined) return { bytes: limits.gpuMemoryLimitBytes, flag: '--max-gpu-memory' }
  return limits.hostMemoryLimitBytes !== undefined ? { bytes: limits.hostMemoryLimitBytes, flag: '--max-memory' } : undefined
}

/**
 * The host memory a training unit's own copies (torchHostBytes) may take: --max-memory, except
 * on CUDA without --max-gpu-memory, where --max-memory keeps its old meaning, the GPU's
 * (deviceMemoryCap): a number an old service file sized for the card would otherwise refuse
 * units whose host copies (about 20 bytes a parameter) pass it on a host with room to spare.
 */
export function trainingHostCap (onCuda: boolean, limits: { hostMemoryLimitBytes?: number | undefined, gpuMemoryLimitBytes?: number | undefined }): number | undefined {
  if (onCuda && limits.gpuMemoryLimitBytes === undefined) return undefined
  return limits.hostMemoryLimitBytes
}

/**
 * The refusal of a unit the child's fit check says does not fit (`reason`, the child's numbers),
 * naming what its owner can change first: the flag that capped the device (`cap`), else the device.
 */
export function deviceFitRefusal (reason: string, cap: MemoryCap | undefined, onCuda: boolean): ExecutorError {
  const larger = cap === undefined
    ? 'join with a larger GPU'
    : !onCuda
        ? `join with a larger --max-memory (this node allows ${gib(cap.bytes)} GiB) or a larger GPU`
        : cap.flag === '--max-gpu-memory'
          ? `join with a larger --max-gpu-memory (this node allows ${gib(cap.bytes)} GiB of the GPU) or a larger GPU`
          : `join with --max-gpu-memory SIZE for the GPU alone (--max-memory's ${gib(cap.bytes)} GiB caps the GPU while --max-gpu-memory is not given) or a larger GPU`
  return new ExecutorError('ERR_UNIT_TOO_LARGE', `${reason}; lower the run's batch size or sequence length, or ${larger}`)
}

/**
 * Why the torch executor should not take `unit` before asking the child: more parameters than
 * the agent can hold, more batch bytes than TORCH_MAX_BATCH_BYTES, more host memory for the
 * agent's own copies (torchHostBytes) than `hostMemoryLimitBytes` (--max-memory), or, given the
 * FLOP/s this executor measured on earlier rounds, no chance to finish before the deadline.
 * Undefined when none applies.
 */
export function torchRefusal (unit: WorkUnit, flopsPerSecond: number | undefined, now = Date.now(), hostMemoryLimitBytes?: number): ExecutorError | undefined {
  const params = countParams(unit.modelConfig)
  if (params > TORCH_MAX_PARAMS) {
    return new ExecutorError('ERR_UNIT_TOO_LARGE', `the run's model has ${params.toExponential(2)} parameters; an agent holds at most ${TORCH_MAX_PARAMS} (${(TORCH_MAX_PARAMS * 12 / 1024 ** 3).toFixed(0)} GiB of weights, θ_local and delta in its memory)`)
  }
  const r = unit.recipe
  const batchBytes = r.innerSteps * r.batchSize * (r.seqLen + 1) * 4
  if (batchBytes > TORCH_MAX_BATCH_BYTES) {
    return new ExecutorError('ERR_UNIT_TOO_LARGE', `the unit's ${r.innerSteps} steps of batch ${r.batchSize} × ${r.seqLen + 1} tokens are ${(batchBytes / 1024 ** 3).toFixed(1)} GiB of token batches; a node takes at most ${TORCH_MAX_BATCH_BYTES / 1024 ** 3} GiB a unit. Ask the organizer for fewer inner steps`)
  }
  if (hostMemoryLimitBytes !== undefined) {
    const held = torchHostBytes(unit)
    if (held > hostMemoryLimitBytes) {
      return new ExecutorError('ERR_UNIT_TOO_LARGE', `the agent holds about ${gib(held)} GiB of host memory for this unit (the ${(params / 1e6).toFixed(1)}M-parameter model's checkpoint, base, trained weights, Δ and report, and its token batches); --max-memory allows ${gib(hostMemoryLimitBytes)} GiB. Join with a larger --max-memory, or ask the organizer for a smaller model or fewer inner steps`)
    }
  }
  if (flopsPerSecond === undefined || !(flopsPerSecond > 0)) return undefined
  const tokens = r.innerSteps * r.batchSize * r.seqLen
  const seconds = 6 * params * tokens / flopsPerSecond
  const left = (Date.parse(unit.deadline) - now) / 1000
  // A deadline already past (or a skewed clock) is the coordinator's call, not ours.
  if (left > 0 && seconds > left) {
    return new ExecutorError('ERR_UNIT_TOO_SLOW', `the unit is ${tokens.toLocaleString('en-US')} tokens of a ${(params / 1e6).toFixed(1)}M-parameter model: about ${Math.ceil(seconds)} s at the ${(flopsPerSecond / 1e9).toFixed(1)} GFLOP/s this node measured on its last round, but the round closes in ${Math.floor(left)} s`)
  }
  return undefined
}

export type Precision = 'auto' | 'bf16' | 'float32'
export type Checkpointing = 'auto' | 'on' | 'off'
export type Sharding = 'auto' | 'on' | 'off'

export interface TorchExecutorOptions {
  /** the interpreter; default $BARNRAISE_PYTHON, else the first of python3 and /usr/bin/python3 that has torch */
  python?: string
  /** interpreter flags (tests pass -S -I to hide site-packages) */
  pythonFlags?: string[]
  /** auto (first GPU, else CPU), cpu, cuda, cuda:N, or several: cuda:all, cuda:0,cuda:1 (cpu,cpu in tests) */
  device?: string
  /** CPU threads for torch on the CPU (0: torch's default) */
  threads?: number
  /** auto: bf16 autocast on GPUs that support it, float32 elsewhere */
  precision?: Precision
  /** activation checkpointing; auto turns it on when a unit only fits with it, or after running out of memory */
  checkpointing?: Checkpointing
  /** on several devices, whether the ranks share AdamW's moments (ZeRO-1); auto when a replica per device does not fit */
  sharding?: Sharding
  /** --max-memory: the host memory this node lets the agent plan with (the child's too on the CPU; on CUDA without `gpuMemoryLimitBytes`, the GPU's as well: deviceMemoryCap) */
  hostMemoryLimitBytes?: number
  /** --max-gpu-memory: the device memory the child may plan with on CUDA */
  gpuMemoryLimitBytes?: number
  /** the child's log and stderr lines */
  log?: (line: string) => void
  /** how long to wait on the child (DEFAULT_TORCH_TIMEOUTS; tests shorten them) */
  timeouts?: Partial<TorchTimeouts>
}

const trainResultSchema = z.object({
  lossCurve: z.array(z.number().nullable()),
  skippedSteps: z.number().int().nonnegative(),
  tokens: z.number().int().nonnegative(),
  computeSeconds: z.number().nonnegative(),
  ioSeconds: z.number().nonnegative(),
  precision: z.enum(['bf16', 'float32']),
  checkpointing: z.boolean(),
  optimizer: z.string(),
  attention: z.string(),
  shardedOptimizer: z.boolean().optional(),
  /** ranks that trained rows of the batch (fewer than the node's when the batch is smaller) */
  devices: z.number().int().positive().optional()
})

const fitSchema = z.object({
  fits: z.boolean(),
  checkpointing: z.boolean(),
  needBytes: z.number(),
  freeBytes: z.number(),
  reason: z.string(),
  precision: z.enum(['bf16', 'float32']),
  shardedOptimizer: z.boolean().optional()
})

export type TorchFit = z.infer<typeof fitSchema>

const measureSchema = z.object({ tokensPerSecond: z.number(), gflops: z.number(), precision: z.string(), seconds: z.number() })

/** The child's answer to `evaluate` (torch-executor/README.md, "Held-out losses"). */
const evaluateSchema = z.object({
  losses: z.array(z.number().nullable()),
  batches: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  seqLen: z.number().int().positive(),
  seconds: z.number().nonnegative(),
  device: z.string(),
  attention: z.string()
})

/**
 * Held-out losses the torch child measures (`heldOutLosses`): a checkpoint's, and of it moved
 * along a report's Δ for each scale, in float32 as the TypeScript forward pass measures them.
 */
export interface HeldOutRequest {
  config: LlamaConfig
  /** the checkpoint as the coordinator stores it: an F32 model.safetensors with Hugging Face names, written to the child as it is */
  weights: Uint8Array
  /** Δ, flat in checkpoint order; each scale s measures weights + s·Δ */
  delta?: Float32Array
  /** 1 to 16 finite numbers; a scale other than 0 needs `delta` */
  scales: number[]
  /** batches × batchSize windows of seqLen + 1 token ids, row after row */
  tokens: Int32Array
  batches: number
  batchSize: number
  seqLen: number
  /** a folder for the request's files (they are removed afterwards; the folder stays) */
  dir: string
  signal: AbortSignal
  /** when the answer stops being of use (ms since the epoch, a scoring task's round deadline): past it the request is abandoned */
  deadline?: number
}

/** One loss per scale (null where not finite), how long the child took, and where it measured. */
export interface HeldOutResult { losses: Array<number | null>, seconds: number, device: string }

/**
 * How much slower a float32 forward pass (what `evaluate` runs: IEEE matmuls, no TF32) goes than
 * bf16 training on the same GPU: dense bf16 against plain float32 is 989 against 67 TFLOP/s on an
 * H100 SXM, 312 against 19.5 on an A100. Used only until this executor has timed a scoring task.
 */
const BF16_OVER_FLOAT32 = 16

const goldenSchema = z.object({
  rows: z.array(z.object({ name: z.string(), value: z.number().nullable(), threshold: z.number(), relErr: z.boolean(), unit: z.string().optional() }))
})

/**
 * Starts a torch child with the first interpreter that has torch. Refusals that no other
 * interpreter can fix (CUDA unavailable, a bad device) are thrown at once; when every
 * interpreter lacks Python or torch, the error lists what each one said.
 */
async function startChild (o: TorchExecutorOptions): Promise<{ child: TorchChild, python: string }> {
  const tried: Array<{ python: string, err: ExecutorError }> = []
  for (const python of pythonCandidates(o.python)) {
    try {
      const child = await TorchChild.start({ python, device: o.device ?? 'auto', threads: o.threads ?? 0, ...(o.pythonFlags !== undefined ? { pythonFlags: o.pythonFlags } : {}), ...(o.log !== undefined ? { log: o.log } : {}) })
      return { child, python }
    } catch (err) {
      if (!(err instanceof ExecutorError) || !['ERR_PYTHON_MISSING', 'ERR_PYTHON_TOO_OLD', 'ERR_TORCH_MISSING', 'ERR_TORCH_TOO_OLD'].includes(err.code)) throw err
      tried.push({ python, err })
    }
  }
  if (tried.length === 1) throw tried[0]!.err
  const torchless = tried.find((t) => t.err.code !== 'ERR_PYTHON_MISSING')
  const list = tried.map((t) => `${t.python}: ${t.err.message}`).join('; ')
  throw new ExecutorError(torchless?.err.code ?? 'ERR_PYTHON_MISSING', `no interpreter with torch found (${list})`)
}

/**
 * Trains work units in PyTorch through one long-lived Python child that keeps the model and
 * the inner AdamW resident across rounds (torch-executor/). Same weights layout, schedule,
 * clipping and optimizer state file as the TypeScript executor, so the two mix in one run
 * and a node can switch between them.
 */
export class TorchExecutor implements Executor {
  readonly name: string
  readonly kind: ExecutorKind
  readonly python: string
  readonly #options: TorchExecutorOptions
  readonly #timeouts: TorchTimeouts
  #child: TorchChild | undefined
  #restarts = 0
  #shardingLogged = false
  /** 6 × parameters × tokens / second of the last round trained (any model): what the deadline check extrapolates from */
  /**
   * FLOP/s measured on the last trained round of each model (by its config): a rate is only
   * used for units of the same model, since small models run at far lower FLOP/s than large
   * ones (`auto`'s measurement round would otherwise make a node refuse every large unit).
   */
  readonly #rates = new Map<string, number>()
  /** Whether each model's rate in #rates was measured in bf16 (a float32 evaluation runs far slower). */
  readonly #ratePrecisions = new Map<string, 'bf16' | 'float32'>()
  /** Forward FLOP/s of the last `evaluate` of each model (load included), by its config. */
  readonly #evaluateRates = new Map<string, number>()

  private constructor (child: TorchChild, python: string, options: TorchExecutorOptions) {
    this.#child = child
    this.python = python
    this.#options = options
    this.#timeouts = { ...DEFAULT_TORCH_TIMEOUTS, ...options.timeouts }
    const r = child.ready
    this.kind = r.device.startsWith('cuda') ? 'torch-cuda' : 'torch-cpu'
    const ranks = r.ranks ?? [{ rank: 0, device: r.device, pid: r.pid }]
    const where = r.device.startsWith('cuda')
      ? `${ranks.length > 1 ? `${ranks.length} × ` : ''}${r.deviceName ?? 'GPU'} (${ranks.map((k) => k.device).join(',')})`
      : `CPU (${r.threads} thread${r.threads === 1 ? '' : 's'}${ranks.length > 1 ? ` × ${ranks.length} ranks` : ''})`
    this.name = `PyTorch ${r.torch} on ${where}`
  }

  /** Starts the child (finding an interpreter with torch) and resolves once it is ready. */
  static async start (options: TorchExecutorOptions = {}): Promise<TorchExecutor> {
    const { child, python } = await startChild(options)
    return new TorchExecutor(child, python, options)
  }

  /** What the child reported at start: versions, devices, features. */
  get ready (): TorchReady {
    return this.#child!.ready
  }

  /** How often a crashed child was replaced. */
  get restarts (): number { return this.#restarts }

  /** The current child's process id. */
  get childPid (): number | undefined { return this.#child?.pid }

  /** How many devices the child trains on (ranks of its data-parallel group). */
  get devices (): number { return this.#child?.ready.ranks?.length ?? 1 }

  /** Every rank's process id (rank 0 is the child; more when it trains on several devices). */
  get rankPids (): number[] { return this.#child?.ready.ranks?.map((r) => r.pid) ?? (this.#child !== undefined ? [this.#child.pid] : []) }

  async #live (): Promise<TorchChild> {
    if (this.#child !== undefined && !this.#child.dead) return this.#child
    // A killed child may not be reaped yet: on a GPU two children would share its memory.
    await this.#child?.exited
    const { child } = await startChild({ ...this.#options, python: this.python })
    this.#child = child
    return child
  }

  /** A control request (not train): bounded by `controlMs`, after which the child counts as hung and is killed. */
  async #control (body: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
    const child = await this.#live()
    return await child.request(body, { hungAfterMs: this.#timeouts.controlMs, abortGraceMs: this.#timeouts.abortGraceMs, ...(signal !== undefined ? { signal } : {}) })
  }

  /** The cap the child plans its device with (--max-gpu-memory on CUDA, --max-memory on the CPU: deviceMemoryCap), if any. */
  get deviceMemoryCap (): MemoryCap | undefined {
    return deviceMemoryCap(this.kind === 'torch-cuda', this.#options)
  }

  /** --max-memory: the host memory this node lets the agent plan with, if set. */
  get hostMemoryLimitBytes (): number | undefined { return this.#options.hostMemoryLimitBytes }


  /**
   * The bytes the child may plan with: the device cap; on the CPU, less `agentBytes`, the host
   * memory the agent holds for the unit beside the child (torchHostBytes). Null for no cap.
   */
  #childLimit (agentBytes: number): number | null {
    const cap = this.deviceMemoryCap
    if (cap === undefined) return null
    // At least a byte: null would mean no cap. torchRefusal has refused a unit whose copies alone pass it.
    return this.kind === 'torch-cuda' ? cap.bytes : Math.max(1, cap.bytes - agentBytes)
  }

  /**
   * Whether a unit fits this device's free memory, turning on checkpointing if that is what it
   * takes; `agentBytes` is what the agent holds for it on the host (counted against --max-memory
   * on the CPU, where the child shares that memory).
   */
  async fit (config: LlamaConfig, batchSize: number, seqLen: number, signal?: AbortSignal, agentBytes = 0): Promise<TorchFit> {
    return fitSchema.parse(await this.#control({
      type: 'fit', config, batchSize, seqLen, precision: this.#options.precision ?? 'auto',
      checkpointing: this.#options.checkpointing ?? 'auto', memoryLimitBytes: this.#childLimit(agentBytes),
      sharding: this.#options.sharding ?? 'auto'
    }, signal))
  }

  /**
   * Refuses a unit the agent cannot hold, one that cannot finish before its deadline at the
   * throughput measured so far, and one whose parameters, optimizer state and activations do not
   * fit the device. A child that crashes or hangs on the fit check is restarted once; failing
   * again, the unit is declined (ERR_UNIT_CRASHED) rather than retried through reconnects.
   */
  async check (unit: WorkUnit, signal?: AbortSignal): Promise<ExecutorError | undefined> {
    const key = rateKey(unit.modelConfig)
    const early = torchRefusal(unit, this.#rates.get(key), Date.now(), trainingHostCap(this.kind === 'torch-cuda', this.#options))
    if (early !== undefined) {
      // One slow round (a busy machine, warm-up) must not refuse every later unit: the next gets a real try.
      if (early.code === 'ERR_UNIT_TOO_SLOW') this.#rates.delete(key)
      return early
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const plan = await this.fit(unit.modelConfig, unit.recipe.batchSize, unit.recipe.seqLen, signal, torchHostBytes(unit))
        if (plan.fits) return undefined
        // Where the node's own flag set the bound, that is the first thing its owner can change.
        return deviceFitRefusal(plan.reason, this.deviceMemoryCap, this.kind === 'torch-cuda')
      } catch (err) {
        if (signal?.aborted === true || !isChildFailure(err)) throw err
        this.#restarts++
        if (attempt >= 1) return crashedTwice(err as ExecutorError)
        this.#options.log?.(`torch: the child failed checking the unit (${(err as Error).message}); restarting it`)
      }
    }
  }

  /**
   * Waits until the child has written the last round's optimizer state (it writes while the agent
   * uploads). A disk write, not a model step: no hang bound (8 GiB of moments on a slow disk takes
   * long), only the caller's signal.
   */
  async flush (signal?: AbortSignal): Promise<void> {
    const child = await this.#live()
    await child.request({ type: 'flush' }, { abortGraceMs: this.#timeouts.abortGraceMs, ...(signal !== undefined ? { signal } : {}) })
  }

  /** Training tokens per second of `config` on random data, measured in the child. */
  async measure (config: Record<string, unknown>, batchSize: number, seqLen: number, steps: number): Promise<z.infer<typeof measureSchema>> {
    return measureSchema.parse(await this.#control({ type: 'measure', config: parseLlamaConfig(config), batchSize, seqLen, steps, precision: this.#options.precision ?? 'auto' }))
  }

  /** Checks a golden file in the child (float32 on its device); one row per compared tensor. */
  async golden (file: string): Promise<z.infer<typeof goldenSchema>['rows']> {
    return goldenSchema.parse(await this.#control({ type: 'golden', file })).rows
  }

  async train (request: TrainRequest): Promise<TrainResult> {
    const { unit, signal } = request
    const r = unit.recipe
    const config = unit.modelConfig
    const dir = join(request.stateDir, 'torch')
    await mkdir(dir, { recursive: true })
    const files = { base: join(dir, 'base.safetensors'), batches: join(dir, 'batches.safetensors'), out: join(dir, 'local.safetensors') }
    try {
      await writeWeightsFile(files.base, config, request.base)
      await writeBatchesFile(files.batches, request.batches, r.innerSteps, r.batchSize, r.seqLen, signal)
      let checkpointing = this.#options.checkpointing ?? 'auto'
      const deadline = Date.parse(unit.deadline)
      let childFailures = 0
      for (let attempt = 0; ; attempt++) {
        signal.throwIfAborted()
        try {
          const child = await this.#live()
          // Past its deadline and the margin, the coordinator has given the unit's tokens to others: stop and decline it.
          const giveUpMs = Number.isFinite(deadline) ? Math.max(deadline - Date.now(), 0) + this.#timeouts.deadlineMarginMs : undefined
          const raw = await child.request({
            type: 'train',
            config,
            recipe: { innerSteps: r.innerSteps, batchSize: r.batchSize, seqLen: r.seqLen, lr: r.lr, warmupSteps: r.warmupSteps, weightDecay: r.weightDecay, beta1: r.beta1, beta2: r.beta2, gradClip: r.gradClip },
            scheduleOffset: unit.scheduleOffset,
            totalInnerSteps: unit.totalInnerSteps,
            baseFile: files.base,
            batchesFile: files.batches,
            outFile: files.out,
            stateDir: request.stateDir,
            precision: this.#options.precision ?? 'auto',
            checkpointing,
            memoryLimitBytes: this.#childLimit(torchHostBytes(unit)),
            sharding: this.#options.sharding ?? 'auto'
          }, {
            signal,
            hungAfterMs: trainIdleMs(this.#timeouts.trainIdleMs, config, r.batchSize, r.seqLen, this.#rates.get(rateKey(config))),
            abortGraceMs: this.#timeouts.abortGraceMs,
            ...(giveUpMs !== undefined
              ? {
                  giveUpAfter: {
                    ms: Math.min(giveUpMs, MAX_TIMER_MS),
                    error: () => new ExecutorError('ERR_UNIT_TOO_SLOW', `the unit was still training ${Math.round(this.#timeouts.deadlineMarginMs / 60_000)} min after its deadline (${unit.deadline}); abandoned it. Ask the organizer for fewer inner steps or a later deadline`)
                  }
                }
              : {}),
            onProgress: (p) => { request.onProgress({ step: p.step, steps: p.steps, loss: p.loss ?? Number.NaN, tokensPerSecond: p.tokensPerSecond }) }
          })
          const result = trainResultSchema.parse(raw)
          if (result.tokens > 0 && result.computeSeconds > 0) {
            this.#rates.set(rateKey(config), 6 * countParams(config) * result.tokens / result.computeSeconds)
            this.#ratePrecisions.set(rateKey(config), result.precision)
          }
          if (result.shardedOptimizer === true && !this.#shardingLogged) {
            this.#shardingLogged = true
            this.#options.log?.(`torch: AdamW's moments are sharded over the ${this.devices} ranks (each steps its share of the weights, then broadcasts them)`)
          }
          if (result.skippedSteps === r.innerSteps) throw new ExecutorError('ERR_NON_FINITE', 'every inner step had a non-finite loss or gradient; nothing to report')
          const params = await readWeightsFile(files.out, config)
          return {
            params,
            lossCurve: result.lossCurve.filter((l): l is number => l !== null && Number.isFinite(l)),
            tokens: result.tokens,
            computeSeconds: result.computeSeconds,
            executor: this.kind,
            // The ranks that trained rows, not the node's: a rank without rows only joined the all-reduce.
            ...(Math.min(result.devices ?? this.devices, this.devices) > 1 ? { devices: Math.min(result.devices ?? this.devices, this.devices) } : {})
          }
        } catch (err) {
          if (signal.aborted || !(err instanceof ExecutorError)) throw err
          if (isChildFailure(err)) {
            // The files are still on disk and the optimizer state on disk is the round's start: a fresh child redoes the round exactly.
            this.#restarts++
            // Twice on one unit: the unit is what kills it (or this node cannot run it); decline rather than loop through reconnects.
            if (++childFailures >= 2) throw crashedTwice(err)
            this.#options.log?.(`torch: the child ${err.code === 'ERR_CHILD_HUNG' ? 'hung' : 'crashed'} (${err.message}); restarting it and retrying the round`)
            continue
          }
          if (attempt >= 1) throw err
          if (err.code === 'ERR_OUT_OF_MEMORY' && checkpointing === 'auto') {
            checkpointing = 'on'
            this.#options.log?.('torch: out of memory; retrying the round with activation checkpointing')
            continue
          }
          throw err
        }
      }
    } finally {
      // Up to three model-sized files; the next round writes fresh ones.
      await Promise.all(Object.values(files).map(async (f) => { await rm(f, { force: true }) }))
    }
  }

  /** The device `evaluate` runs on (rank 0's, on several), with its memory as the child reported it at start. */
  get evaluationDevice (): TorchDevice | undefined {
    const r = this.#child?.ready
    if (r === undefined) return undefined
    const name = r.ranks?.[0]?.device ?? r.device
    const kind = name.startsWith('cuda') ? 'cuda' : 'cpu'
    return r.devices.find((d) => d.name === name) ?? r.devices.find((d) => d.kind === kind)
  }

  /**
   * Forward-pass FLOP/s this executor can be expected to score `config` at: what its last
   * scoring task of the model measured, else the model's training rate (divided by
   * BF16_OVER_FLOAT32 where it trained in bf16: evaluation is float32), else undefined.
   */
  evaluationFlopsPerSecond (config: LlamaConfig): number | undefined {
    const key = rateKey(config)
    const measured = this.#evaluateRates.get(key)
    if (measured !== undefined) return measured
    const trained = this.#rates.get(key)
    if (trained === undefined) return undefined
    return this.#ratePrecisions.get(key) === 'bf16' ? trained / BF16_OVER_FLOAT32 : trained
  }

  /**
   * Held-out losses in the child (`evaluate`): the checkpoint moved by s·Δ for each scale, on the
   * request's windows, in float32. The files go to `dir` and are removed after. Waits first for
   * the last round's optimizer state write, so a child killed here never cuts one off. The
   * evaluation is bounded as control requests are, or longer where this executor's measured
   * speed says the passes take longer (three times the estimate): past it the child counts as
   * hung and is killed (ERR_CHILD_HUNG). Past `deadline` either wait is abandoned
   * (ERR_SCORING_TOO_SLOW) and the child, which cannot stop mid-pass, is killed after the abort
   * grace. The child's refusals (ERR_BAD_INPUT, ERR_OUT_OF_MEMORY, …) and failures arrive as
   * ExecutorErrors; an abort of `signal` rejects with its reason. A killed child is replaced by
   * the next request.
   */
  async heldOutLosses (request: HeldOutRequest): Promise<HeldOutResult> {
    const { config, signal } = request
    const rows = request.batches * request.batchSize
    if (request.tokens.length !== rows * (request.seqLen + 1)) {
      throw new ExecutorError('ERR_BAD_INPUT', `${request.tokens.length} token ids for ${request.batches} × ${request.batchSize} windows of ${request.seqLen + 1}`)
    }
    // Past the deadline the answer counts for nothing: both waits below give up then (a deadline
    // already past, or a skewed clock, is left to the hang bound).
    const giveUp = (): Pick<RequestOptions, 'giveUpAfter'> => {
      const leftMs = request.deadline !== undefined ? request.deadline - Date.now() : Number.NaN
      if (!(leftMs > 0)) return {}
      const error = (): ExecutorError => new ExecutorError('ERR_SCORING_TOO_SLOW', `the held-out losses of a ${(countParams(config) / 1e6).toFixed(1)}M-parameter model were still being measured at the round's deadline; abandoned them`)
      return { giveUpAfter: { ms: Math.min(leftMs, MAX_TIMER_MS), error } }
    }
    try {
      // The last round's optimizer state first, so a child killed below never cuts its write off.
      // One disk write, no longer than the answer is of use. Where the deadline gives no bound
      // (already past by this clock, or none), the control bound does: unbounded, a child hung
      // here held the scoring task, and the agent's scoring, for ever.
      const bound = giveUp()
      await (await this.#live()).request({ type: 'flush' }, { signal, abortGraceMs: this.#timeouts.abortGraceMs, ...('giveUpAfter' in bound ? bound : { hungAfterMs: this.#timeouts.controlMs }) })
    } catch (err) {
      if (isChildFailure(err)) this.#restarts++
      throw err
    }
    await mkdir(request.dir, { recursive: true })
    const files = { weights: join(request.dir, 'weights.safetensors'), windows: join(request.dir, 'windows.safetensors'), ...(request.delta !== undefined ? { delta: join(request.dir, 'delta.safetensors') } : {}) }
    try {
      await writeFile(files.weights, request.weights)
      if (request.delta !== undefined) await writeWeightsFile(files.delta!, config, request.delta)
      const window = request.batchSize * (request.seqLen + 1)
      await writeBatchesFile(files.windows, (b) => request.tokens.subarray(b * window, (b + 1) * window), request.batches, request.batchSize, request.seqLen, signal)
      const flops = request.scales.length * rows * request.seqLen * forwardFlopsPerToken(config, request.seqLen)
      const expectedMs = 1000 * flops / (this.evaluationFlopsPerSecond(config) ?? SLOWEST_FLOPS)
      let raw: unknown
      try {
        const child = await this.#live()
        raw = await child.request({
          type: 'evaluate',
          config,
          weightsFile: files.weights,
          windowsFile: files.windows,
          ...(files.delta !== undefined ? { deltaFile: files.delta } : {}),
          scales: request.scales
        }, {
          signal,
          // No progress frames: the whole request is one wait. A hung child must not hold scoring forever.
          hungAfterMs: Math.min(Math.max(this.#timeouts.controlMs, 3 * expectedMs), MAX_TIMER_MS),
          abortGraceMs: this.#timeouts.abortGraceMs,
          ...giveUp()
        })
      } catch (err) {
        // The next request starts a fresh child (#live).
        if (isChildFailure(err)) this.#restarts++
        throw err
      }
      const parsed = evaluateSchema.safeParse(raw)
      if (!parsed.success) throw new ExecutorError('ERR_CHILD_PROTOCOL', `the child's evaluate answer does not parse: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
      const result = parsed.data
      if (result.losses.length !== request.scales.length) throw new ExecutorError('ERR_CHILD_PROTOCOL', `the child answered ${result.losses.length} losses for ${request.scales.length} scales`)
      if (result.seconds > 0) this.#evaluateRates.set(rateKey(config), flops / result.seconds)
      return { losses: result.losses, seconds: result.seconds, device: result.device }
    } finally {
      // Up to two model-sized files, and another node's tokens: nothing here is needed again.
      await Promise.all(Object.values(files).map(async (f) => { await rm(f, { force: true }) }))
    }
  }

  /** Stops the child (after it finishes writing the optimizer state; killed after 30 s). */
  async close (): Promise<void> {
    await this.#child?.close()
    this.#child = undefined
  }
}

/** A child that died or was killed under a request: the next request starts a fresh one. */
function isChildFailure (err: unknown): boolean {
  return err instanceof ExecutorError && (err.code === 'ERR_CHILD_CRASHED' || err.code === 'ERR_CHILD_HUNG')
}

function crashedTwice (err: ExecutorError): ExecutorError {
  return new ExecutorError('ERR_UNIT_CRASHED', `the torch child failed twice on this unit, restarted in between (${err.message}); declining it`, { cause: err })
}

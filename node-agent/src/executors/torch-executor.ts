import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { parseLlamaConfig } from '@barnraise/protocol'
import type { LlamaConfig, WorkUnit } from '@barnraise/protocol'
import type { Executor, ExecutorKind, TrainRequest, TrainResult } from './executor.ts'
import { ExecutorError } from './executor-error.ts'
import { encodeBatches, readWeightsFile, writeWeightsFile } from './tensor-files.ts'
import { TorchChild } from './torch-child.ts'
import type { TorchReady } from './torch-child.ts'

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
  /** never plan to use more than this many bytes of device memory */
  memoryLimitBytes?: number
  /** the child's log and stderr lines */
  log?: (line: string) => void
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

const goldenSchema = z.object({
  rows: z.array(z.object({ name: z.string(), value: z.number().nullable(), threshold: z.number(), relErr: z.boolean(), unit: z.string().optional() }))
})

/** The interpreters tried when none is named: $BARNRAISE_PYTHON alone when set, else python3 on PATH then Debian's. */
export function pythonCandidates (explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  if (explicit !== undefined) return [explicit]
  if (env.BARNRAISE_PYTHON !== undefined && env.BARNRAISE_PYTHON !== '') return [env.BARNRAISE_PYTHON]
  return [...new Set(['python3', '/usr/bin/python3'])]
}

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
  #child: TorchChild | undefined
  #restarts = 0
  #shardingLogged = false

  private constructor (child: TorchChild, python: string, options: TorchExecutorOptions) {
    this.#child = child
    this.python = python
    this.#options = options
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
    const { child } = await startChild({ ...this.#options, python: this.python })
    this.#child = child
    return child
  }

  /** Whether a unit fits this device's free memory, turning on checkpointing if that is what it takes. */
  async fit (config: LlamaConfig, batchSize: number, seqLen: number): Promise<TorchFit> {
    const child = await this.#live()
    return fitSchema.parse(await child.request({
      type: 'fit', config, batchSize, seqLen, precision: this.#options.precision ?? 'auto',
      checkpointing: this.#options.checkpointing ?? 'auto', memoryLimitBytes: this.#options.memoryLimitBytes ?? null,
      sharding: this.#options.sharding ?? 'auto'
    }))
  }

  /** Refuses a unit whose parameters, optimizer state and activations do not fit the device. */
  async check (unit: WorkUnit): Promise<ExecutorError | undefined> {
    const plan = await this.fit(unit.modelConfig, unit.recipe.batchSize, unit.recipe.seqLen)
    if (plan.fits) return undefined
    return new ExecutorError('ERR_UNIT_TOO_LARGE', `${plan.reason}; lower the run's batch size or sequence length, or join with a larger GPU`)
  }

  /** Waits until the child has written the last round's optimizer state (it writes while the agent uploads). */
  async flush (): Promise<void> {
    const child = await this.#live()
    await child.request({ type: 'flush' })
  }

  /** Training tokens per second of `config` on random data, measured in the child. */
  async measure (config: Record<string, unknown>, batchSize: number, seqLen: number, steps: number): Promise<z.infer<typeof measureSchema>> {
    const child = await this.#live()
    return measureSchema.parse(await child.request({ type: 'measure', config: parseLlamaConfig(config), batchSize, seqLen, steps, precision: this.#options.precision ?? 'auto' }))
  }

  /** Checks a golden file in the child (float32 on its device); one row per compared tensor. */
  async golden (file: string): Promise<z.infer<typeof goldenSchema>['rows']> {
    const child = await this.#live()
    return goldenSchema.parse(await child.request({ type: 'golden', file })).rows
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
      await writeFile(files.batches, encodeBatches(request.batches, r.innerSteps, r.batchSize, r.seqLen))
      let checkpointing = this.#options.checkpointing ?? 'auto'
      for (let attempt = 0; ; attempt++) {
        signal.throwIfAborted()
        try {
          const child = await this.#live()
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
            memoryLimitBytes: this.#options.memoryLimitBytes ?? null,
            sharding: this.#options.sharding ?? 'auto'
          }, {
            signal,
            onProgress: (p) => { request.onProgress({ step: p.step, steps: p.steps, loss: p.loss ?? Number.NaN, tokensPerSecond: p.tokensPerSecond }) }
          })
          const result = trainResultSchema.parse(raw)
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
          if (signal.aborted || !(err instanceof ExecutorError) || attempt >= 1) throw err
          if (err.code === 'ERR_CHILD_CRASHED') {
            // The files are still on disk and the optimizer state on disk is the round's start: a fresh child redoes the round exactly.
            this.#restarts++
            this.#child = undefined
            this.#options.log?.(`torch: the child crashed (${err.message}); restarting it and retrying the round`)
            continue
          }
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

  /** Stops the child (after it finishes writing the optimizer state). */
  async close (): Promise<void> {
    await this.#child?.close()
    this.#child = undefined
  }
}

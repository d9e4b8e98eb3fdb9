import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { totalmem } from 'node:os'
import { join } from 'node:path'
import type { WorkUnit } from '@barnraise/protocol'
import { AdamW, GradientPool, TYPESCRIPT_MAX_PARAMS, countParams, createParamSet, decodeAdamWState, encodeAdamWState, runLocalTraining, trainingAttentionBytes, trainingFlopsPerToken, trainingWorkspaceBytes } from '@barnraise/trainer'
import type { Executor, TrainRequest, TrainResult } from './executor.ts'
import { ExecutorError } from './executor-error.ts'

/**
 * An optimistic training rate per thread (measured here: 2–4 GFLOP/s per core). Optimistic on
 * purpose: a unit is refused only when even this rate misses the deadline.
 */
const OPTIMISTIC_FLOPS_PER_THREAD = 8e9

/** Share of this machine's memory the trainer may plan to use: the rest is the donor's. */
const MEMORY_SHARE = 0.5

const gib = (bytes: number): string => (bytes / 1024 ** 3).toFixed(bytes < 10 * 1024 ** 3 ? 1 : 0)

/**
 * Bytes a unit needs while training here: one training workspace per thread that gets batch rows
 * (GradientPool splits the batch), plus model-sized buffers: the weights, AdamW's m and v, a
 * gradient per thread and the pool's shared copy of the weights.
 */
export function typescriptTrainingBytes (unit: WorkUnit, threads: number): { total: number, attention: number, shares: number, rowsPerShare: number } {
  const config = unit.modelConfig
  const { batchSize, seqLen } = unit.recipe
  const shares = Math.max(1, Math.min(threads, batchSize))
  const rowsPerShare = Math.ceil(batchSize / shares)
  const modelCopies = 3 + shares + (shares > 1 ? 1 : 0)
  return {
    total: shares * trainingWorkspaceBytes(config, rowsPerShare, seqLen) + modelCopies * 4 * countParams(config),
    attention: shares * trainingAttentionBytes(config, rowsPerShare, seqLen),
    shares,
    rowsPerShare
  }
}

/** Limits `typescriptRefusal` checks against; tests inject them. */
export interface TypeScriptLimits {
  /** the memory a unit may plan to use; default half of os.totalmem() */
  memoryBytes?: number
  /** --max-memory: a cap below that, never a raise (the rest of the machine is the donor's) */
  maxMemoryBytes?: number
  now?: number
}

/** Why the TypeScript trainer should not take `unit` (too large for this machine, or cannot finish before its deadline); undefined when it can. */
export function typescriptRefusal (unit: WorkUnit, threads: number, limits: TypeScriptLimits = {}): ExecutorError | undefined {
  const params = countParams(unit.modelConfig)
  if (params > TYPESCRIPT_MAX_PARAMS) {
    return new ExecutorError('ERR_UNIT_TOO_LARGE', `the TypeScript CPU trainer handles models up to ${TYPESCRIPT_MAX_PARAMS / 1e6}M parameters in sane time; this run's model has ${(params / 1e6).toFixed(0)}M. Join this node with --executor torch (a GPU: see torch-executor/README.md)`)
  }
  const r = unit.recipe
  // Attention keeps layers × batch × heads × seqLen² floats for backward: a tiny model with a
  // long sequence needs more memory than the machine has, and an allocation that large ends in
  // the OOM killer (this agent or the donor's other programs), not a catchable error.
  const share = limits.memoryBytes ?? MEMORY_SHARE * totalmem()
  const capped = limits.maxMemoryBytes !== undefined && limits.maxMemoryBytes < share
  const limit = capped ? limits.maxMemoryBytes! : share
  const need = typescriptTrainingBytes(unit, threads)
  if (need.total > limit) {
    const perThread = need.shares > 1 ? ` (${need.shares} threads of ${need.rowsPerShare} row${need.rowsPerShare === 1 ? '' : 's'} each)` : ''
    const allows = capped ? ' (--max-memory)' : limits.memoryBytes === undefined ? ` (half of this machine's ${gib(totalmem())} GiB)` : ''
    return new ExecutorError('ERR_UNIT_TOO_LARGE', `seqLen ${r.seqLen} × batch ${r.batchSize} needs ~${gib(need.total)} GiB to train on the TypeScript CPU trainer${perThread}, ~${gib(need.attention)} GiB of it attention memory (it grows with seqLen²); this node allows ${gib(limit)} GiB${allows}. ${capped ? 'Join with a larger --max-memory, ask' : 'Ask'} the organizer for a shorter seqLen or a smaller batch, or join with --executor torch (a GPU)`)
  }
  const tokens = r.innerSteps * r.batchSize * r.seqLen
  // Forward and backward, attention's T² share included (the trainer's cost.ts).
  const seconds = tokens * trainingFlopsPerToken(unit.modelConfig, r.seqLen) / (OPTIMISTIC_FLOPS_PER_THREAD * threads)
  const now = limits.now ?? Date.now()
  const left = (Date.parse(unit.deadline) - now) / 1000
  // A deadline already past (or a skewed clock) is the coordinator's call, not ours.
  if (left > 0 && seconds > left) {
    return new ExecutorError('ERR_UNIT_TOO_SLOW', `the unit is ${tokens.toLocaleString('en-US')} tokens of a ${(params / 1e6).toFixed(1)}M-parameter model at seqLen ${r.seqLen}: at least ${Math.ceil(seconds)} s on ${threads} CPU thread${threads === 1 ? '' : 's'} of the TypeScript trainer, but the round closes in ${Math.floor(left)} s. Join with --executor torch or more --threads`)
  }
  return undefined
}

/** Where a run's inner optimizer state is kept between rounds and restarts. */
function statePath (stateDir: string): string {
  return join(stateDir, 'inner-adamw.safetensors')
}

/** Loads the saved AdamW state when it fits this model; otherwise starts fresh (a new run or model). */
async function loadOptimizer (path: string, size: number, make: () => AdamW): Promise<AdamW> {
  const optimizer = make()
  try {
    const state = decodeAdamWState(new Uint8Array(await readFile(path)))
    if (state.m.length === size) optimizer.importState(state)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`inner optimizer state ${path} is unreadable (${(err as Error).message}); delete it to start the optimizer afresh`)
  }
  return optimizer
}

/**
 * The built-in executor: the TypeScript Llama trainer on this machine's CPU. Inner AdamW
 * state persists per run, as DiLoCo keeps each worker's inner optimizer across rounds.
 */
export class TypeScriptExecutor implements Executor {
  readonly name: string
  readonly kind = 'typescript' as const
  readonly #threads: number
  readonly #memoryBytes: number | undefined
  readonly #maxMemoryBytes: number | undefined
  #pool: { key: string, pool: GradientPool } | undefined

  /**
   * `threads` CPU threads share each step (batch rows split across worker threads); `memoryBytes`
   * is what a unit may need (default half of this machine's memory), `maxMemoryBytes`
   * (--max-memory) a cap below it.
   */
  constructor (options: { threads?: number, memoryBytes?: number, maxMemoryBytes?: number } = {}) {
    this.#threads = options.threads ?? 1
    this.#memoryBytes = options.memoryBytes
    this.#maxMemoryBytes = options.maxMemoryBytes
    this.name = `the TypeScript CPU trainer (${this.#threads} thread${this.#threads === 1 ? '' : 's'})`
  }

  /** A worker pool for this model, kept across rounds; none when training on one thread. */
  async #poolFor (config: Parameters<typeof GradientPool.start>[0]): Promise<GradientPool | undefined> {
    if (this.#threads <= 1) return undefined
    const key = JSON.stringify(config)
    if (this.#pool?.key !== key) {
      await this.#pool?.pool.close()
      this.#pool = { key, pool: await GradientPool.start(config, this.#threads) }
    }
    return this.#pool.pool
  }

  /** Stops the worker threads. */
  async close (): Promise<void> {
    await this.#pool?.pool.close()
    this.#pool = undefined
  }

  /** Refuses models too large for a CPU trainer or this machine's memory, and units it cannot finish before their deadline. */
  async check (unit: WorkUnit): Promise<ExecutorError | undefined> {
    return this.precheck(unit)
  }

  /** All of `check`: it needs only the unit and this machine's figures. */
  precheck (unit: WorkUnit): ExecutorError | undefined {
    return typescriptRefusal(unit, this.#threads, { memoryBytes: this.#memoryBytes, maxMemoryBytes: this.#maxMemoryBytes })
  }

  async train (request: TrainRequest): Promise<TrainResult> {
    const { unit, base, batches, signal } = request
    const r = unit.recipe
    const config = unit.modelConfig
    const params = createParamSet(config, new Float32Array(base))
    const path = statePath(request.stateDir)
    const optimizer = await loadOptimizer(path, base.length, () => new AdamW(base.length, { lr: r.lr, beta1: r.beta1, beta2: r.beta2, weightDecay: r.weightDecay }))
    const pool = await this.#poolFor(config)
    const result = await runLocalTraining({
      ...(pool !== undefined ? { pool } : {}),
      params,
      optimizer,
      steps: r.innerSteps,
      batchSize: r.batchSize,
      seqLen: r.seqLen,
      batches,
      schedule: { peakLr: r.lr, warmupSteps: r.warmupSteps, totalSteps: unit.totalInnerSteps, minLr: r.lr / 10 },
      scheduleOffset: unit.scheduleOffset,
      gradClip: r.gradClip,
      signal,
      onProgress: (p) => { request.onProgress({ step: p.step, steps: p.steps, loss: p.loss, tokensPerSecond: p.tokensPerSecond }) }
    })
    if (result.skippedSteps === r.innerSteps) throw new ExecutorError('ERR_NON_FINITE', 'every inner step had a non-finite loss or gradient; nothing to report')
    await mkdir(request.stateDir, { recursive: true })
    await writeFile(path + '.tmp', encodeAdamWState(optimizer.exportState()))
    await rename(path + '.tmp', path)
    // Skipped steps (non-finite loss) are NaN in the curve; the report carries the finite ones.
    // Tokens count only the steps that trained.
    const tokens = r.batchSize * r.seqLen * (r.innerSteps - result.skippedSteps)
    return { params: params.flat, lossCurve: result.lossCurve.filter(Number.isFinite), tokens, computeSeconds: result.seconds, executor: this.kind }
  }
}

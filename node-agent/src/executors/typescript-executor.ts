import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseLlamaConfig } from '@barnraise/protocol'
import { AdamW, GradientPool, createParamSet, decodeAdamWState, encodeAdamWState, runLocalTraining } from '@barnraise/trainer'
import type { Executor, TrainRequest, TrainResult } from './executor.ts'

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
  readonly #threads: number
  #pool: { key: string, pool: GradientPool } | undefined

  /** `threads` CPU threads share each step (batch rows split across worker threads). */
  constructor (options: { threads?: number } = {}) {
    this.#threads = options.threads ?? 1
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

  async train (request: TrainRequest): Promise<TrainResult> {
    const { unit, base, batches, signal } = request
    const r = unit.recipe
    const config = parseLlamaConfig(unit.modelConfig)
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
    if (result.skippedSteps === r.innerSteps) throw new Error('every inner step had a non-finite loss or gradient; nothing to report')
    await mkdir(request.stateDir, { recursive: true })
    await writeFile(path + '.tmp', encodeAdamWState(optimizer.exportState()))
    await rename(path + '.tmp', path)
    // Skipped steps (non-finite loss) are NaN in the curve; the report carries the finite ones.
    // Tokens count only the steps that trained.
    const tokens = r.batchSize * r.seqLen * (r.innerSteps - result.skippedSteps)
    return { params: params.flat, lossCurve: result.lossCurve.filter(Number.isFinite), tokens, computeSeconds: result.seconds }
  }
}

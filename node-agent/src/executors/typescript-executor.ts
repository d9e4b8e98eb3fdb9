import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseLlamaConfig } from '@barnraise/protocol'
import {
  AdamW, clipGradNorm, createParamSet, decodeAdamWState, encodeAdamWState, learningRateAt, lossAndGrad
} from '@barnraise/trainer'
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
  readonly name = 'the TypeScript CPU trainer'

  async train (request: TrainRequest): Promise<TrainResult> {
    const { unit, base, batches, signal } = request
    const r = unit.recipe
    const config = parseLlamaConfig(unit.modelConfig)
    const params = createParamSet(config, new Float32Array(base))
    const grads = createParamSet(config)
    const path = statePath(request.stateDir)
    const optimizer = await loadOptimizer(path, base.length, () => new AdamW(base.length, { lr: r.lr, beta1: r.beta1, beta2: r.beta2, weightDecay: r.weightDecay }))
    const lossCurve: number[] = []
    const started = performance.now()
    const tokensPerStep = r.batchSize * r.seqLen
    for (let step = 0; step < r.innerSteps; step++) {
      signal.throwIfAborted()
      const ids = batches(step)
      const { loss } = lossAndGrad(params, ids, r.batchSize, r.seqLen, grads)
      if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at inner step ${step + 1}`)
      clipGradNorm(grads.flat, r.gradClip)
      const lr = learningRateAt(unit.scheduleOffset + step, { peakLr: r.lr, warmupSteps: r.warmupSteps, totalSteps: unit.totalInnerSteps, minLr: r.lr / 10 })
      optimizer.step(params.flat, grads.flat, lr)
      lossCurve.push(loss)
      const seconds = (performance.now() - started) / 1000
      request.onProgress({ step: step + 1, steps: r.innerSteps, loss, tokensPerSecond: tokensPerStep * (step + 1) / Math.max(seconds, 1e-9) })
      // Let heartbeats and network events through between steps.
      await new Promise((resolve) => setImmediate(resolve))
    }
    await mkdir(request.stateDir, { recursive: true })
    await writeFile(path + '.tmp', encodeAdamWState(optimizer.exportState()))
    await rename(path + '.tmp', path)
    return { params: params.flat, lossCurve, tokens: tokensPerStep * r.innerSteps, computeSeconds: (performance.now() - started) / 1000 }
  }
}

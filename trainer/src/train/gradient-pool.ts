// Data-parallel loss and gradient over CPU cores: the batch's rows are split between the main
// thread and worker threads, each running the ordinary single-threaded lossAndGrad on its
// share, and the per-share gradients are averaged weighted by rows. One copy of the weights in
// (a SharedArrayBuffer) and one reduction out per step, so the threads never wait on each other
// inside the model; a step scales close to linearly while the batch has rows to share.
import { Worker } from 'node:worker_threads'
import type { LlamaConfig } from '@barnraise/protocol'
import { lossAndGrad } from '../model/llama.ts'
import { ModelError } from '../model/model-error.ts'
import type { ModelErrorCode } from '../model/model-error.ts'
import { countParams } from '../model/params.ts'
import type { ParamSet } from '../model/params.ts'
import type { WorkerInit, WorkerReply, WorkerStep } from './gradient-worker.ts'

interface PoolWorker { worker: Worker, grads: Float32Array }

/** Worker threads that share lossAndGrad's work for one model config. */
export class GradientPool {
  readonly config: LlamaConfig
  /** threads used per step, the main thread included */
  readonly threads: number
  private readonly workers: PoolWorker[]
  private readonly sharedParams: Float32Array
  private closed = false

  private constructor (config: LlamaConfig, workers: PoolWorker[], sharedParams: Float32Array) {
    this.config = config
    this.workers = workers
    this.sharedParams = sharedParams
    this.threads = workers.length + 1
  }

  /** Starts `threads − 1` workers (threads ≥ 1; 1 means the main thread alone). */
  static async start (config: LlamaConfig, threads: number): Promise<GradientPool> {
    if (!Number.isSafeInteger(threads) || threads < 1) throw new RangeError(`threads ${threads} must be a positive integer`)
    const n = countParams(config)
    const params = new SharedArrayBuffer(n * 4)
    const workers: PoolWorker[] = []
    try {
      for (let w = 1; w < threads; w++) {
        const grads = new SharedArrayBuffer(n * 4)
        const worker = new Worker(new URL('./gradient-worker.ts', import.meta.url))
        workers.push({ worker, grads: new Float32Array(grads) })
        worker.postMessage({ type: 'init', config, params, grads } satisfies WorkerInit)
      }
      await Promise.all(workers.map(async ({ worker }) => { await reply(worker) }))
    } catch (err) {
      await Promise.all(workers.map(async ({ worker }) => await worker.terminate()))
      throw err
    }
    // Idle workers must not keep the process alive; they are ref'd while a step is in flight.
    for (const { worker } of workers) worker.unref()
    return new GradientPool(config, workers, new Float32Array(params))
  }

  /** lossAndGrad over all threads: same result as the single-threaded call up to float rounding; `grads` is overwritten. */
  async lossAndGrad (params: ParamSet, inputIds: Int32Array, batch: number, seqLen: number, grads: ParamSet): Promise<number> {
    if (this.closed) throw new Error('GradientPool is closed')
    if (params.flat.length !== this.sharedParams.length || grads.flat.length !== this.sharedParams.length) {
      throw new ModelError('ERR_BAD_PARAMS', `pool was started for ${this.sharedParams.length} parameters; got weights of ${params.flat.length} and grads of ${grads.flat.length}`)
    }
    if (!Number.isSafeInteger(batch) || batch < 1 || inputIds.length !== batch * (seqLen + 1)) {
      throw new ModelError('ERR_BAD_INPUT', `inputIds has ${inputIds.length} tokens; batch ${batch} × (seqLen ${seqLen} + 1) needs ${batch * (seqLen + 1)}`)
    }
    const shares = Math.min(this.threads, batch)
    const window = seqLen + 1
    const rowsOf = (s: number): number => Math.floor(batch * (s + 1) / shares) - Math.floor(batch * s / shares)
    const firstRow = (s: number): number => Math.floor(batch * s / shares)
    if (shares > 1) this.sharedParams.set(params.flat)
    const pending: Array<Promise<WorkerReply>> = []
    for (let s = 1; s < shares; s++) {
      const { worker } = this.workers[s - 1]
      worker.ref()
      const ids = inputIds.slice(firstRow(s) * window, (firstRow(s) + rowsOf(s)) * window)
      pending.push(reply(worker))
      worker.postMessage({ type: 'step', inputIds: ids, batch: rowsOf(s), seqLen } satisfies WorkerStep, [ids.buffer])
    }
    let ownError: unknown
    let loss = 0
    try {
      loss = lossAndGrad(params, inputIds.subarray(0, rowsOf(0) * window), rowsOf(0), seqLen, grads).loss * rowsOf(0)
    } catch (err) {
      ownError = err
    }
    const replies = await Promise.all(pending)
    for (let s = 1; s < shares; s++) this.workers[s - 1].worker.unref()
    if (ownError !== undefined) throw ownError
    for (const r of replies) {
      if (r.type === 'error') throw new ModelError((r.code ?? 'ERR_BAD_INPUT') as ModelErrorCode, r.message)
    }
    // Each share's loss and gradient are means over its rows; weight them by rows.
    const g = grads.flat
    const w0 = rowsOf(0) / batch
    for (let i = 0; i < g.length; i++) g[i] *= w0
    for (let s = 1; s < shares; s++) {
      const r = replies[s - 1]
      if (r.type === 'done') loss += r.loss * rowsOf(s)
      const gw = this.workers[s - 1].grads
      const ws = rowsOf(s) / batch
      for (let i = 0; i < g.length; i++) g[i] += ws * gw[i]
    }
    return loss / batch
  }

  /** Stops the workers. */
  async close (): Promise<void> {
    this.closed = true
    await Promise.all(this.workers.map(async ({ worker }) => await worker.terminate()))
  }
}

/** The worker's next reply; rejects if it dies first. */
async function reply (worker: Worker): Promise<WorkerReply> {
  return await new Promise<WorkerReply>((resolve, reject) => {
    const onMessage = (msg: WorkerReply): void => { cleanup(); resolve(msg) }
    const onError = (err: Error): void => { cleanup(); reject(err) }
    const onExit = (code: number): void => { cleanup(); reject(new Error(`gradient worker exited with code ${code}`)) }
    const cleanup = (): void => {
      worker.off('message', onMessage)
      worker.off('error', onError)
      worker.off('exit', onExit)
    }
    worker.on('message', onMessage)
    worker.on('error', onError)
    worker.on('exit', onExit)
  })
}

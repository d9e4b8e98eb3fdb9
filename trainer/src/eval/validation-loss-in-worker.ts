// A checkpoint's validation loss on a worker thread: at 125M parameters the TypeScript forward
// pass runs at about 1.6 GFLOP/s here, so one checkpoint's default windows take hours, and the
// coordinator may not stop answering its peers for that.
import { Worker } from 'node:worker_threads'
import type { LlamaConfig } from '@barnraise/protocol'
import type { ValidationLossJob, ValidationLossReply } from './validation-loss-worker.ts'

/**
 * The mean loss of checkpoint bytes (F32 safetensors) for `config` over `batches` (from
 * validationBatches), measured on a worker thread; `signal` stops the worker. The checkpoint's
 * buffer is moved to the worker, not copied: the caller must not use it afterwards.
 */
export async function validationLossInWorker (config: LlamaConfig, checkpoint: Uint8Array, batches: Int32Array[], opts: { batchSize: number, seqLen: number }, signal?: AbortSignal): Promise<number> {
  signal?.throwIfAborted()
  // A view over part of a larger (or shared) buffer cannot be moved: copy it out first.
  const whole = checkpoint.byteOffset === 0 && checkpoint.buffer instanceof ArrayBuffer && checkpoint.byteLength === checkpoint.buffer.byteLength
  const bytes = whole ? checkpoint : checkpoint.slice()
  const job: ValidationLossJob = { config, checkpoint: bytes, batches, batchSize: opts.batchSize, seqLen: opts.seqLen }
  const worker = new Worker(new URL('./validation-loss-worker.ts', import.meta.url), { workerData: job, transferList: [bytes.buffer as ArrayBuffer] })
  let stop: () => void = () => {}
  const abort = (): void => { stop(); void worker.terminate() }
  signal?.addEventListener('abort', abort, { once: true })
  try {
    return await new Promise((resolve, reject) => {
      // Removed with `abort` below: the signal may outlive many measurements (BackgroundEvaluation's).
      stop = () => { reject(signal?.reason) }
      worker.once('message', (m: ValidationLossReply) => { resolve(m.loss) })
      worker.once('error', reject)
      worker.once('exit', (code) => { reject(new Error(`the worker measuring a validation loss stopped (exit ${code}) before finishing`)) })
    })
  } finally {
    signal?.removeEventListener('abort', abort)
    await worker.terminate()
  }
}

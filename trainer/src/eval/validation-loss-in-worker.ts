// A checkpoint's validation loss on a worker thread: at 125M parameters the TypeScript forward
// pass runs at about 1.6 GFLOP/s here, so one checkpoint's default windows take hours, and the
// coordinator may not stop answering its peers for that.
import type { LlamaConfig } from '@barnraise/protocol'
import { callWorker } from '../workers/worker-call.ts'
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
  const reply = await callWorker<ValidationLossReply>(new URL('./validation-loss-worker.ts', import.meta.url), {
    what: 'the worker measuring a validation loss',
    workerData: job,
    transferList: [bytes.buffer as ArrayBuffer],
    signal
  })
  return reply.loss
}

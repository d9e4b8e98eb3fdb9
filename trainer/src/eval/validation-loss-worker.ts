// Worker thread body for validation-loss-in-worker.ts: reads the checkpoint and measures its
// loss on the batches it was handed, the same arithmetic as validationLoss on the event loop.
import { parentPort, workerData } from 'node:worker_threads'
import type { LlamaConfig } from '@barnraise/protocol'
import { paramSetFromSafetensors } from '../hf/import.ts'
import { lossOverBatches } from './validation-loss.ts'

export interface ValidationLossJob { config: LlamaConfig, checkpoint: Uint8Array, batches: Int32Array[], batchSize: number, seqLen: number }
export interface ValidationLossReply { loss: number }

const job = workerData as ValidationLossJob
const params = paramSetFromSafetensors(job.config, job.checkpoint)
parentPort!.postMessage({ loss: lossOverBatches(params, job.batches, job) } satisfies ValidationLossReply)

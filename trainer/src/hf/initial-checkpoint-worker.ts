// Worker thread body for initial-checkpoint.ts: makes the initial weights a slice at a time, each
// when the main thread asks, into a buffer it lends back (or a new one for its first asks), and
// moves each filled slice to it. The thread never holds more than the buffers in flight: when it
// made the model whole, its malloc arenas kept about 0.9× the model after it had ended.
import { parentPort, workerData } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import type { LlamaConfig } from '@barnraise/protocol'
import { initialWeightWriter } from './initial-weights.ts'

export interface InitialCheckpointJob {
  config: LlamaConfig
  seed: number
  /** Values in a slice; the last may be shorter. */
  sliceValues: number
  /** Where the main thread asks for the next slice. */
  requests: MessagePort
}

/** Asks for the next slice, in `buffer` (one the worker sent before) or, without one, in a new buffer. */
export interface SliceRequest { buffer?: ArrayBuffer }

/** A slice's values as F32 bytes (the first byteLength bytes of buffer, moved), then `done` after the last. */
export type InitialCheckpointMessage = { buffer: ArrayBuffer, byteLength: number } | { done: true }

const job = workerData as InitialCheckpointJob
const weights = initialWeightWriter(job.config, job.seed)
const sliceBytes = 4 * Math.min(job.sliceValues, weights.total)
let left = weights.total

function finish (): void {
  parentPort!.postMessage({ done: true } satisfies InitialCheckpointMessage)
  // With nothing left to ask for, the thread may end on its own.
  job.requests.close()
}

job.requests.on('message', (request: SliceRequest) => {
  if (left === 0) return
  const n = Math.min(left, job.sliceValues)
  const buffer = request.buffer !== undefined && request.buffer.byteLength >= 4 * n ? request.buffer : new ArrayBuffer(sliceBytes)
  weights.write(new Float32Array(buffer, 0, n))
  left -= n
  parentPort!.postMessage({ buffer, byteLength: 4 * n } satisfies InitialCheckpointMessage, [buffer])
  if (left === 0) finish()
})
if (left === 0) finish()

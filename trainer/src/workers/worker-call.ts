// One job on a worker thread of its own, awaited like a function call: the coordinator and the
// agent hand work that takes seconds to hours (a validation loss, an initial checkpoint, a
// scoring task, tokenizing a dataset) to a thread so their event loops go on answering peers.
// Every such call needs the same care, which each copy had got a little differently: the abort
// signal terminates the worker and its listener is removed afterwards (the signals outlive many
// calls), an error thrown in the worker rejects with its message and code, a worker that exits
// without a result rejects instead of hanging, and the thread is always terminated.
import { Worker } from 'node:worker_threads'
import type { ResourceLimits, Transferable } from 'node:worker_threads'
import { CodedError } from '@barnraise/protocol'

export type WorkerCallErrorCode = 'ERR_WORKER_EXITED'

/** A worker thread that ended before it posted its result. */
export class WorkerCallError extends CodedError<WorkerCallErrorCode> {}

export interface WorkerCallOptions<Message, Result> {
  /** What the worker does, for the error when it stops early: "the worker measuring a validation loss". */
  what: string
  /** The job, cloned (or moved: transferList) into the worker's `workerData`. */
  workerData?: unknown
  /** Buffers in workerData to move rather than copy; the caller must not use them afterwards. */
  transferList?: readonly Transferable[]
  /** Caps on the worker's heap: one that fills it is stopped alone, and the call rejects with ERR_WORKER_OUT_OF_MEMORY. */
  resourceLimits?: ResourceLimits
  /** Aborting terminates the worker; the call rejects with the signal's reason (an AbortError unless one was given). */
  signal?: AbortSignal
  /**
   * Reads each message the worker posts: `{ result }` ends the call, undefined is a message along
   * the way (progress), and a throw rejects the call. By default the first message is the result.
   */
  onMessage?: (message: Message) => { result: Result } | undefined
  /** The error for a worker that exits before its result (default: a WorkerCallError, ERR_WORKER_EXITED). */
  exitError?: (exitCode: number) => Error
}

/** Runs the worker at `url` once and resolves with its result; the thread is terminated however the call ends. */
export async function callWorker<Result, Message = Result> (url: URL, options: WorkerCallOptions<Message, Result>): Promise<Result> {
  const { signal } = options
  signal?.throwIfAborted()
  const worker = new Worker(url, {
    workerData: options.workerData,
    ...(options.transferList !== undefined ? { transferList: [...options.transferList] } : {}),
    ...(options.resourceLimits !== undefined ? { resourceLimits: options.resourceLimits } : {})
  })
  const read = options.onMessage ?? ((m: Message) => ({ result: m as unknown as Result }))
  let onAbort = (): void => {}
  let onMessage = (_: Message): void => {}
  try {
    return await new Promise<Result>((resolve, reject) => {
      onAbort = () => {
        reject(signal?.reason)
        void worker.terminate()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      onMessage = (m) => {
        let settled: { result: Result } | undefined
        try {
          settled = read(m)
        } catch (err) {
          reject(err)
          return
        }
        if (settled !== undefined) resolve(settled.result)
      }
      worker.on('message', onMessage)
      worker.once('error', reject)
      worker.once('exit', (code) => {
        reject(options.exitError?.(code) ?? new WorkerCallError('ERR_WORKER_EXITED', `${options.what} stopped (exit ${code}) before finishing`))
      })
    })
  } finally {
    signal?.removeEventListener('abort', onAbort)
    // Messages still queued (progress after the result) reach nobody once the call has ended.
    worker.off('message', onMessage)
    await worker.terminate()
  }
}

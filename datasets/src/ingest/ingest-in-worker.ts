import { Worker } from 'node:worker_threads'
import { DatasetError } from '../dataset-error.ts'
import type { BuildProgress } from './build-dataset.ts'
import type { IngestJob, IngestMessage, IngestResult } from './ingest-job.ts'

/** Runs an ingest job on a worker thread; `onProgress` hears from it as it reads; `signal` stops the worker (the promise rejects with the abort reason). */
export async function ingestInWorker (job: IngestJob, onProgress: (p: BuildProgress) => void, signal?: AbortSignal): Promise<IngestResult> {
  signal?.throwIfAborted()
  const worker = new Worker(new URL('./ingest-worker.ts', import.meta.url), { workerData: job })
  try {
    return await new Promise<IngestResult>((resolve, reject) => {
      signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      worker.on('message', (m: IngestMessage) => {
        if (m.type === 'progress') onProgress(m.progress)
        else if (m.type === 'done') resolve(m.result)
        else reject(new DatasetError(m.code === 'ERR_BAD_FILE' || m.code === 'ERR_TOO_FEW_DOCUMENTS' || m.code === 'ERR_BAD_OPTIONS' ? m.code : 'ERR_BAD_FILE', m.message))
      })
      worker.on('error', reject)
      worker.on('exit', (code) => { reject(new DatasetError('ERR_BAD_FILE', `the tokenizing worker stopped (exit ${code}) before finishing`)) })
    })
  } finally {
    await worker.terminate()
  }
}

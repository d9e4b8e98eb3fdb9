import { callWorker } from '@barnraise/trainer'
import { DatasetError } from '../dataset-error.ts'
import type { BuildProgress } from './build-dataset.ts'
import type { IngestJob, IngestMessage, IngestResult } from './ingest-job.ts'

/** Runs an ingest job on a worker thread; `onProgress` hears from it as it reads; `signal` stops the worker (the promise rejects with the abort reason). */
export async function ingestInWorker (job: IngestJob, onProgress: (p: BuildProgress) => void, signal?: AbortSignal): Promise<IngestResult> {
  return await callWorker<IngestResult, IngestMessage>(new URL('./ingest-worker.ts', import.meta.url), {
    what: 'the tokenizing worker',
    workerData: job,
    signal,
    onMessage: (m) => {
      if (m.type === 'progress') {
        onProgress(m.progress)
        return undefined
      }
      if (m.type === 'done') return { result: m.result }
      throw new DatasetError(m.code === 'ERR_BAD_FILE' || m.code === 'ERR_TOO_FEW_DOCUMENTS' || m.code === 'ERR_BAD_OPTIONS' ? m.code : 'ERR_BAD_FILE', m.message)
    },
    exitError: (code) => new DatasetError('ERR_BAD_FILE', `the tokenizing worker stopped (exit ${code}) before finishing`)
  })
}

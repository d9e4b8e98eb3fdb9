import { callWorker } from '@barnraise/trainer'
import { DatasetError } from '../dataset-error.ts'
import type { BuildProgress } from './build-dataset.ts'
import type { IngestJob, IngestMessage, IngestResult } from './ingest-job.ts'

/**
 * How long the worker may go without a heartbeat: its thread is blocked in one step. Honest
 * steps take seconds to about two minutes (a 16 MiB line through a slow tokenizer; a 1 GiB
 * Parquet row group, decoded and tokenized at 8 MB/s without a turn of the event loop); an
 * uploaded tokenizer.json's regex can backtrack for ever on one line, and datasets tokenize one
 * at a time, so a stuck one would hold up every organizer's.
 */
export const INGEST_STALL_MS = 10 * 60_000

/**
 * Runs an ingest job on a worker thread; `onProgress` hears from it as it reads; `signal` stops
 * the worker (the promise rejects with the abort reason). A worker blocked for `stallMs` is
 * stopped, and the call rejects with ERR_BAD_FILE.
 */
export async function ingestInWorker (job: IngestJob, onProgress: (p: BuildProgress) => void, signal?: AbortSignal, { stallMs = INGEST_STALL_MS }: { stallMs?: number } = {}): Promise<IngestResult> {
  const stall = new AbortController()
  let last: BuildProgress | null = null
  let timer: NodeJS.Timeout | undefined
  const alive = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      const where = last === null ? 'before its first document' : `after ${last.documents} documents and ${last.badRows} bad rows`
      stall.abort(new DatasetError('ERR_BAD_FILE', `tokenizing was stopped: it spent more than ${Math.round(stallMs / 1000)} s on one step ${where} (a tokenizer.json whose regular expression backtracks without end on a line does this); check the tokenizer's patterns and the file's longest lines`))
    }, stallMs)
  }
  alive()
  try {
    return await callWorker<IngestResult, IngestMessage>(new URL('./ingest-worker.ts', import.meta.url), {
      what: 'the tokenizing worker',
      workerData: job,
      signal: signal === undefined ? stall.signal : AbortSignal.any([signal, stall.signal]),
      onMessage: (m) => {
        alive()
        if (m.type === 'alive') return undefined
        if (m.type === 'progress') {
          last = m.progress
          onProgress(m.progress)
          return undefined
        }
        if (m.type === 'done') return { result: m.result }
        throw new DatasetError(m.code === 'ERR_BAD_FILE' || m.code === 'ERR_TOO_FEW_DOCUMENTS' || m.code === 'ERR_BAD_OPTIONS' ? m.code : 'ERR_BAD_FILE', m.message)
      },
      exitError: (code) => new DatasetError('ERR_BAD_FILE', `the tokenizing worker stopped (exit ${code}) before finishing`)
    })
  } finally {
    clearTimeout(timer)
  }
}

import { callWorker } from '@barnraise/trainer'
import { DatasetError } from '../dataset-error.ts'
import type { DatasetErrorCode } from '../dataset-error.ts'
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
 * The worker's heap: room for its largest honest step, one Parquet row group's text (up to 1 GiB,
 * twice that as strings of non-Latin-1 text) with its tokens. Nothing it keeps grows with the file
 * (the document index goes to disk as it is made), so a file that fills it fails alone
 * instead of growing the coordinator's memory without end.
 */
export const INGEST_HEAP_MB = 4096

/** Error codes the worker's refusals keep; anything else it throws is a bad file. */
const CODES = new Set<DatasetErrorCode>(['ERR_BAD_FILE', 'ERR_TOO_FEW_DOCUMENTS', 'ERR_BAD_OPTIONS', 'ERR_QUOTA_EXCEEDED'])

/**
 * Runs an ingest job on a worker thread; `onProgress` hears from it as it reads; `signal` stops
 * the worker (the promise rejects with the abort reason). A worker blocked for `stallMs`, or
 * whose heap passes `heapMb`, is stopped, and the call rejects with ERR_BAD_FILE.
 */
export async function ingestInWorker (job: IngestJob, onProgress: (p: BuildProgress) => void, signal?: AbortSignal, { stallMs = INGEST_STALL_MS, heapMb = INGEST_HEAP_MB }: { stallMs?: number, heapMb?: number } = {}): Promise<IngestResult> {
  const stall = new AbortController()
  let last: BuildProgress | null = null
  let timer: NodeJS.Timeout | undefined
  const where = (): string => last === null ? 'before its first document' : `after ${last.documents} documents and ${last.badRows} bad rows`
  const alive = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      stall.abort(new DatasetError('ERR_BAD_FILE', `tokenizing was stopped: it spent more than ${Math.round(stallMs / 1000)} s on one step ${where()} (a tokenizer.json whose regular expression backtracks without end on a line does this); check the tokenizer's patterns and the file's longest lines`))
    }, stallMs)
  }
  alive()
  try {
    return await callWorker<IngestResult, IngestMessage>(new URL('./ingest-worker.ts', import.meta.url), {
      what: 'the tokenizing worker',
      workerData: job,
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
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
        throw new DatasetError(CODES.has(m.code as DatasetErrorCode) ? m.code as DatasetErrorCode : 'ERR_BAD_FILE', m.message)
      },
      exitError: (code) => new DatasetError('ERR_BAD_FILE', `the tokenizing worker stopped (exit ${code}) before finishing`)
    })
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY') {
      throw new DatasetError('ERR_BAD_FILE', `tokenizing ran out of memory: the worker's ${heapMb} MiB heap filled ${where()}, in one step too large to hold (a very long document, or a Parquet row group of much text); split the longest documents, or write the Parquet file with smaller row groups (pyarrow: row_group_size=100_000)`)
    }
    throw err
  } finally {
    clearTimeout(timer)
  }
}

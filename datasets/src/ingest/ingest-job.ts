import type { DatasetFormat } from '../readers/source-document.ts'
import type { BuildProgress, BuildResult } from './build-dataset.ts'

/** What the ingest worker is asked to do: read one file and write its shards into `outDir`. */
export interface IngestJob {
  path: string
  format: DatasetFormat
  /** JSONL field or Parquet column holding the text; null for plain text */
  field: string | null
  /** the file's name as uploaded */
  source: string
  /** a catalogue tokenizer's name, or the path of an uploaded tokenizer.json */
  tokenizer: { catalog: string } | { file: string }
  outDir: string
  shardTokens: number
  holdOutEvery: number
  maxValidationTokens: number
  /** most bytes the job may write into `outDir`; null for none (a caller writing to its own disk) */
  budget: IngestBudget | null
}

/**
 * The room a dataset's shards and index may take, fixed when tokenizing starts: the worker stops
 * (ERR_QUOTA_EXCEEDED) before a write would pass it, so a file that tokenizes into far more than
 * its own size (a decompression bomb, a file of tiny documents) never fills the staging disk.
 */
export interface IngestBudget {
  bytes: number
  /** what bounds it, for the refusal: "your share of the dataset quota (…, --user-dataset-quota-mb) had 1.0 MiB left …" */
  limit: string
  /** what the refused uploader can do */
  advice: string
}

/** The index file the worker leaves in `outDir`: the document index as gzipped JSON. */
export const INDEX_FILE = 'documents.json.gz'

/**
 * A worker's result: shard manifests and counts. The document index is left gzipped in
 * `indexFile`, made on the worker: an index of millions of documents neither crosses threads
 * nor stringifies and compresses on the coordinator's event loop.
 */
export type IngestResult = Omit<BuildResult, 'index'> & { indexFile: string, indexDocuments: number }

/** How often the worker says it is alive: its event loop turns at every read, however slow the file. */
export const INGEST_HEARTBEAT_MS = 1000

/** Messages from the worker: that it is alive, progress as it reads, then the result (shard files named by sha256 in outDir) or an error. */
export type IngestMessage =
  | { type: 'alive' }
  | { type: 'progress', progress: BuildProgress }
  | { type: 'done', result: IngestResult }
  | { type: 'error', code: string, message: string }

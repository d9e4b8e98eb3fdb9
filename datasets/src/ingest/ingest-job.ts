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
}

/** Messages from the worker: progress as it reads, then the result (shard files named by sha256 in outDir) or an error. */
export type IngestMessage =
  | { type: 'progress', progress: BuildProgress }
  | { type: 'done', result: BuildResult }
  | { type: 'error', code: string, message: string }

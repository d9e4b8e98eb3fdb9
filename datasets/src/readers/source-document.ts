/** One item a dataset reader yields: a document's text, or a row it could not use and why. */
export type ReadItem =
  | { kind: 'document', locator: string, text: string }
  | { kind: 'bad', locator: string, reason: string }

/** The formats a dataset file can have. */
export const DATASET_FORMATS = ['text', 'jsonl', 'parquet'] as const
export type DatasetFormat = typeof DATASET_FORMATS[number]

/** A reader's view of its file: items in file order, and how many of its bytes it has read. */
export interface DocumentReader {
  readonly bytesTotal: number
  bytesRead: () => number
  items: () => AsyncGenerator<ReadItem>
}

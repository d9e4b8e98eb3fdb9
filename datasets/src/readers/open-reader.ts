import { DatasetError } from '../dataset-error.ts'
import { jsonlReader } from './jsonl.ts'
import { parquetReader } from './parquet.ts'
import { plainTextReader } from './plain-text.ts'
import type { DatasetFormat, DocumentReader } from './source-document.ts'

/** Opens a dataset file in its format; JSONL and Parquet need the field (column) holding the text. */
export async function openReader (path: string, format: DatasetFormat, field: string | null): Promise<DocumentReader> {
  if (format === 'text') return await plainTextReader(path)
  if (field === null || field === '') throw new DatasetError('ERR_BAD_OPTIONS', `a ${format === 'jsonl' ? 'JSONL' : 'Parquet'} dataset needs the name of the ${format === 'jsonl' ? 'field' : 'column'} that holds the text`)
  return format === 'jsonl' ? await jsonlReader(path, field) : await parquetReader(path, field)
}

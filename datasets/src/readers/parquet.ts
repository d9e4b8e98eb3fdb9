import { parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet'
import type { FileMetaData } from 'hyparquet'
import { DatasetError } from '../dataset-error.ts'
import type { DocumentReader, ReadItem } from './source-document.ts'
import { spanBuffer } from './file-span.ts'
import type { FileSpan } from './file-span.ts'

/**
 * Parquet, read with hyparquet one row group at a time (so memory holds one group of one
 * column): each row's `column` (a string) is a document, located by its row number. Null or
 * non-string values are bad rows.
 */
export async function parquetReader (span: FileSpan, column: string): Promise<DocumentReader> {
  const file = spanBuffer(span)
  let metadata: FileMetaData
  try {
    metadata = await parquetMetadataAsync(file)
  } catch (err) {
    throw new DatasetError('ERR_BAD_FILE', `not a Parquet file: ${(err as Error).message}`)
  }
  const names = parquetSchema(metadata).children.map((c) => c.element.name)
  if (!names.includes(column)) throw new DatasetError('ERR_BAD_FILE', `the Parquet file has no column "${column}"; its columns are ${names.slice(0, 20).join(', ')}`)
  let read = 0
  async function * items (): AsyncGenerator<ReadItem> {
    let rowStart = 0
    for (const group of metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows)
      const rows = await parquetReadObjects({ file, metadata, columns: [column], rowStart, rowEnd })
      for (const [i, row] of rows.entries()) {
        const locator = `row ${rowStart + i}`
        const value = (row as Record<string, unknown>)[column]
        if (typeof value !== 'string') { yield { kind: 'bad', locator, reason: value === null || value === undefined ? `"${column}" is null` : `"${column}" is not a string` }; continue }
        if (value.trim() === '') { yield { kind: 'bad', locator, reason: `"${column}" is empty` }; continue }
        yield { kind: 'document', locator, text: value }
      }
      read += Number(group.total_byte_size)
      rowStart = rowEnd
    }
  }
  const total = metadata.row_groups.reduce((n, g) => n + Number(g.total_byte_size), 0)
  return { bytesTotal: total, bytesRead: () => read, items }
}

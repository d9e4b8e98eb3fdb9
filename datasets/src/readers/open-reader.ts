import { basename } from 'node:path'
import { DatasetError } from '../dataset-error.ts'
import { wholeFile } from './file-span.ts'
import type { FileSpan } from './file-span.ts'
import { jsonlReader } from './jsonl.ts'
import { parquetReader } from './parquet.ts'
import { plainTextReader } from './plain-text.ts'
import type { DatasetFormat, DocumentReader, ReadItem } from './source-document.ts'
import { isTarArchive, tarMembers } from './tar-archive.ts'

/**
 * Opens a dataset file in its format; JSONL and Parquet need the field (column) holding the
 * text. A tar archive is a dataset of several files: its members, every one in `format`, are
 * read in archive order (hidden files such as macOS's `._` companions are passed over), and
 * each document's locator names its member (`part-2.jsonl: line 12`).
 */
export async function openReader (path: string, format: DatasetFormat, field: string | null): Promise<DocumentReader> {
  checkField(format, field)
  if (!await isTarArchive(path)) return await spanReader(await wholeFile(path), format, field)
  const members = (await tarMembers(path)).filter((m) => !basename(m.name).startsWith('.'))
  if (members.length === 0) throw new DatasetError('ERR_BAD_FILE', 'the tar archive holds no files')
  return concatenated(members.map((m) => ({ label: m.name, span: m.span })), format, field)
}

/** Several dataset files, all in `format`, read one after another as one dataset; locators name the file. */
export async function openReaders (paths: string[], format: DatasetFormat, field: string | null): Promise<DocumentReader> {
  if (paths.length === 1) return await openReader(paths[0]!, format, field)
  checkField(format, field)
  return concatenated(await Promise.all(paths.map(async (p) => ({ label: basename(p), span: await wholeFile(p) }))), format, field)
}

function checkField (format: DatasetFormat, field: string | null): void {
  if (format !== 'text' && (field === null || field === '')) throw new DatasetError('ERR_BAD_OPTIONS', `a ${format === 'jsonl' ? 'JSONL' : 'Parquet'} dataset needs the name of the ${format === 'jsonl' ? 'field' : 'column'} that holds the text`)
}

async function spanReader (span: FileSpan, format: DatasetFormat, field: string | null): Promise<DocumentReader> {
  if (format === 'text') return plainTextReader(span)
  return format === 'jsonl' ? jsonlReader(span, field!) : await parquetReader(span, field!)
}

/** Parts read in order; progress counts each part's bytes as its own reader reports them. */
function concatenated (parts: Array<{ label: string, span: FileSpan }>, format: DatasetFormat, field: string | null): DocumentReader {
  const total = parts.reduce((n, p) => n + p.span.end - p.span.start, 0)
  let done = 0
  let current: { reader: DocumentReader, size: number } | null = null
  const bytesRead = (): number => {
    if (current === null) return done
    const share = current.reader.bytesTotal > 0 ? current.reader.bytesRead() / current.reader.bytesTotal : 0
    return done + Math.floor(share * current.size)
  }
  async function * items (): AsyncGenerator<ReadItem> {
    for (const part of parts) {
      let reader: DocumentReader
      try {
        reader = await spanReader(part.span, format, field)
      } catch (err) {
        if (err instanceof DatasetError) throw new DatasetError(err.code, `${part.label}: ${err.message}`)
        throw err
      }
      current = { reader, size: part.span.end - part.span.start }
      for await (const item of reader.items()) yield { ...item, locator: `${part.label}: ${item.locator}` }
      done += current.size
      current = null
    }
  }
  return { bytesTotal: total, bytesRead, items }
}

import { fileLines } from './line-splitter.ts'
import type { FileSpan } from './file-span.ts'
import type { DocumentReader, ReadItem } from './source-document.ts'

/** A paragraph longer than this becomes several documents, so no document outgrows memory. */
const MAX_DOCUMENT_BYTES = 1024 * 1024

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Plain UTF-8 text: each paragraph (lines up to a blank line) is a document, located by its
 * line numbers. Lines that are not UTF-8 are bad rows.
 */
export function plainTextReader (span: FileSpan): DocumentReader {
  let read = 0
  async function * items (): AsyncGenerator<ReadItem> {
    let lines: string[] = []
    let bytes = 0
    let first = 0
    let last = 0
    const flush = (): ReadItem => {
      const item: ReadItem = { kind: 'document', locator: first === last ? `line ${first}` : `lines ${first}-${last}`, text: lines.join('\n') }
      lines = []
      bytes = 0
      return item
    }
    for await (const line of fileLines(span, (n) => { read = n })) {
      if (line.tooLong) { yield { kind: 'bad', locator: `line ${line.number}`, reason: 'the line is longer than 16 MiB' }; continue }
      let text: string
      try {
        text = utf8.decode(line.bytes)
      } catch {
        yield { kind: 'bad', locator: `line ${line.number}`, reason: 'the line is not valid UTF-8' }
        continue
      }
      if (text.trim() === '') { if (lines.length > 0) yield flush(); continue }
      if (lines.length === 0) first = line.number
      last = line.number
      lines.push(text)
      bytes += line.bytes.length + 1
      if (bytes >= MAX_DOCUMENT_BYTES) yield flush()
    }
    if (lines.length > 0) yield flush()
  }
  return { bytesTotal: span.end - span.start, bytesRead: () => read, items }
}

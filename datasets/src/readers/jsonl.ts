import { fileLines } from './line-splitter.ts'
import type { FileSpan } from './file-span.ts'
import type { DocumentReader, ReadItem } from './source-document.ts'

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * JSON Lines: each line is one JSON object whose `field` (a string) is a document, located by its
 * line number. Blank lines are skipped; lines that are not JSON objects with that string field
 * are bad rows with the reason.
 */
export function jsonlReader (span: FileSpan, field: string): DocumentReader {
  let read = 0
  async function * items (): AsyncGenerator<ReadItem> {
    for await (const line of fileLines(span, (n) => { read = n })) {
      const locator = `line ${line.number}`
      if (line.tooLong) { yield { kind: 'bad', locator, reason: 'the line is longer than 16 MiB' }; continue }
      if (line.bytes.length === 0) continue
      let row: unknown
      try {
        row = JSON.parse(utf8.decode(line.bytes))
      } catch (err) {
        yield { kind: 'bad', locator, reason: `not JSON: ${(err as Error).message.slice(0, 120)}` }
        continue
      }
      if (typeof row !== 'object' || row === null || Array.isArray(row)) { yield { kind: 'bad', locator, reason: 'the line is not a JSON object' }; continue }
      const value = (row as Record<string, unknown>)[field]
      if (typeof value !== 'string') { yield { kind: 'bad', locator, reason: value === undefined ? `no "${field}" field` : `"${field}" is not a string` }; continue }
      if (value.trim() === '') { yield { kind: 'bad', locator, reason: `"${field}" is empty` }; continue }
      yield { kind: 'document', locator, text: value }
    }
  }
  return { bytesTotal: span.end - span.start, bytesRead: () => read, items }
}

import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import type { AsyncBuffer } from 'hyparquet'

/** Bytes [start, end) of a file: a whole dataset file, or one member of a tar archive. */
export interface FileSpan { path: string, start: number, end: number }

/** The whole of `path`. */
export async function wholeFile (path: string): Promise<FileSpan> {
  return { path, start: 0, end: (await stat(path)).size }
}

/** A span's bytes as a stream of chunks (empty for an empty span). */
export function spanStream (span: FileSpan, highWaterMark = 1024 * 1024): AsyncIterable<Buffer> {
  if (span.end <= span.start) return (async function * () {})()
  // createReadStream's end is inclusive.
  return createReadStream(span.path, { start: span.start, end: span.end - 1, highWaterMark }) as AsyncIterable<Buffer>
}

/** A span as hyparquet's random-access buffer (Parquet reads its footer first). */
export function spanBuffer (span: FileSpan): AsyncBuffer {
  return {
    byteLength: span.end - span.start,
    async slice (start: number, end?: number): Promise<ArrayBuffer> {
      const to = Math.min(end ?? span.end - span.start, span.end - span.start)
      if (to <= start) return new ArrayBuffer(0)
      const chunks: Buffer[] = []
      for await (const chunk of spanStream({ path: span.path, start: span.start + start, end: span.start + to })) chunks.push(chunk)
      const buffer = Buffer.concat(chunks)
      return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer
    }
  }
}

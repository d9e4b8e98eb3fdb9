import { spanStream } from './file-span.ts'
import type { FileSpan } from './file-span.ts'

/** A line longer than this is not kept in memory: it is reported and skipped. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024

/** One line of a file (without its newline), or the note that a line was too long to hold. */
export type Line = { number: number, bytes: Uint8Array, tooLong: false } | { number: number, bytes: null, tooLong: true }

/**
 * Streams a file's lines (split on \n; a trailing \r is dropped) without ever holding more than
 * one line plus one read chunk, so files far larger than memory can be read. `onBytes` is told
 * the running count of bytes read.
 */
export async function * fileLines (span: FileSpan, onBytes: (read: number) => void, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<Line> {
  let pending: Buffer[] = []
  let pendingBytes = 0
  let skipping = false
  let number = 0
  let read = 0
  const finish = (): Line => {
    number++
    if (skipping) { skipping = false; pending = []; pendingBytes = 0; return { number, bytes: null, tooLong: true } }
    let bytes = pending.length === 1 ? pending[0]! : Buffer.concat(pending)
    pending = []
    pendingBytes = 0
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1)
    return { number, bytes, tooLong: false }
  }
  for await (const chunk of spanStream(span)) {
    read += chunk.length
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(0x0a, start)
      const end = nl < 0 ? chunk.length : nl
      if (!skipping) {
        if (pendingBytes + (end - start) > maxLineBytes) { skipping = true; pending = []; pendingBytes = 0 } else if (end > start) { pending.push(chunk.subarray(start, end)); pendingBytes += end - start }
      }
      if (nl < 0) break
      yield finish()
      start = nl + 1
    }
    onBytes(read)
  }
  if (pendingBytes > 0 || skipping) yield finish()
}

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseRange } from './range.ts'

export interface SendFileOptions {
  size: number
  /** Strong ETag, quoted. */
  etag: string
  cacheControl: string
  contentType: string
  /** Suggested name for the saved file. */
  filename: string
  /** Reads bytes `start`..`end` inclusive. */
  open: (start: number, end: number) => Readable
  /** Whether single byte ranges are served (false for generated streams that cannot seek). */
  ranges: boolean
  headers?: Record<string, string>
}

function etagMatches (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  return header.split(',').map((t) => t.trim().replace(/^W\//, '')).some((t) => t === etag || t === '*')
}

/** A client that hangs up mid-download is not an error worth logging. */
export function isClientGone (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE'
}

/**
 * Sends a file by streaming it, with its ETag (If-None-Match → 304), one byte range when
 * allowed (If-Range honoured), HEAD, and an attachment name. A read that fails after the
 * headers went out cuts the connection, so a truncated body can never pass for a whole one.
 */
export async function sendFile (req: IncomingMessage, res: ServerResponse, o: SendFileOptions): Promise<void> {
  const common: Record<string, string> = {
    etag: o.etag,
    'accept-ranges': o.ranges ? 'bytes' : 'none',
    'cache-control': o.cacheControl,
    'content-type': o.contentType,
    'content-disposition': `attachment; filename="${o.filename}"`,
    'access-control-allow-origin': '*',
    ...o.headers
  }
  if (etagMatches(req.headers['if-none-match'], o.etag)) { res.writeHead(304, common); res.end(); return }
  const ifRange = req.headers['if-range']
  const range = o.ranges && (ifRange === undefined || ifRange === o.etag) ? parseRange(req.headers.range, o.size) : undefined
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...common, 'content-range': `bytes */${o.size}` })
    res.end()
    return
  }
  const start = range?.start ?? 0
  const end = range?.end ?? o.size - 1
  if (range !== undefined) res.writeHead(206, { ...common, 'content-range': `bytes ${start}-${end}/${o.size}`, 'content-length': end - start + 1 })
  else res.writeHead(200, { ...common, 'content-length': o.size })
  if (req.method === 'HEAD' || o.size === 0) { res.end(); return }
  try {
    await pipeline(o.open(start, end), res)
  } catch (err) {
    if (!isClientGone(err)) throw err
  }
}

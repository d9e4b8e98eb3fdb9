import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { extname, join, normalize, sep } from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isClientGone } from './send-file.ts'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2'
}

/**
 * Serves the built dashboard from `root`; unknown paths fall back to index.html so that
 * client-side routes survive a reload. Returns false when nothing was served.
 */
export async function serveStatic (root: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://localhost')
  let decoded: string
  try {
    decoded = decodeURIComponent(url.pathname)
  } catch {
    return false
  }
  const relative = normalize(decoded).replace(/^([/\\])+/, '')
  let file = join(root, relative)
  if (!file.startsWith(root + sep) && file !== root) return false
  let info = await stat(file).catch(() => undefined)
  if (info?.isDirectory() === true) {
    file = join(file, 'index.html')
    info = await stat(file).catch(() => undefined)
  }
  if (info === undefined || !info.isFile()) {
    if (extname(relative) !== '') return false
    file = join(root, 'index.html')
    info = await stat(file).catch(() => undefined)
    if (info === undefined) return false
  }
  const immutable = file.includes(`${sep}assets${sep}`)
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': info.size,
    'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache'
  })
  if (req.method === 'HEAD') { res.end(); return true }
  // pipeline closes the file when the client hangs up (pipe left it open) and cuts the reply
  // when the read fails (a file gone between stat and read: the dashboard rebuilt meanwhile),
  // so a truncated body never passes for a whole one; that failure is the caller's to log.
  try {
    await pipeline(createReadStream(file), res)
  } catch (err) {
    if (!isClientGone(err)) throw err
  }
  return true
}

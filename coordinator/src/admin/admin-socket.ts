import { createServer, request } from 'node:http'
import type { Server } from 'node:http'
import { chmod, rm } from 'node:fs/promises'
import type { Logger } from '../log.ts'
import { CoordinatorError } from '../errors.ts'
import { RunSpecError } from '../runs/runs.ts'

/** One admin operation: JSON in, JSON out. */
export type AdminHandler = (body: unknown) => Promise<unknown>

/**
 * A local-only control channel on a unix socket in the data directory. Whoever can open the
 * socket can read the data directory anyway, so file permissions are the authorization; it
 * lets the CLI act while an embedded-PGlite coordinator holds the database.
 */
export async function startAdminSocket (path: string, routes: Record<string, AdminHandler>, log: Logger): Promise<Server> {
  await rm(path, { force: true })
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => { size += c.length; if (size > 1_048_576) req.destroy(); else chunks.push(c) })
    req.on('end', () => {
      void (async () => {
        try {
          const handler = req.method === 'POST' ? routes[req.url ?? ''] : undefined
          if (handler === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `unknown admin request ${req.method} ${req.url}`)
          const result = await handler(JSON.parse(Buffer.concat(chunks).toString('utf8')))
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result))
        } catch (err) {
          log.warn('admin request refused', { url: req.url, err })
          const fields = err instanceof RunSpecError ? err.fields : undefined
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message, fields }))
        }
      })()
    })
  })
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(path, resolve) })
  // Whoever can connect can create runs and tokens: the data directory's owner only.
  await chmod(path, 0o600)
  return server
}

/** Sends one admin request to a running coordinator through its socket. */
export async function adminRequest<T> (path: string, route: string, body: unknown): Promise<T> {
  return await new Promise((resolve, reject) => {
    const req = request({ socketPath: path, method: 'POST', path: route, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: string }
        if (res.statusCode !== 200) reject(new Error(parsed.error ?? `admin socket answered ${res.statusCode}`))
        else resolve(parsed as T)
      })
    })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  })
}

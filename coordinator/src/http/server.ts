import { createServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { createHTTPHandler } from '@trpc/server/adapters/standalone'
import { appRouter } from '../api/router.ts'
import type { ApiServices } from '../api/context.ts'
import { SESSION_COOKIE, userForSession } from '../accounts/accounts.ts'
import { hasRole } from '../accounts/roles.ts'
import { addressKey } from './address-key.ts'
import { parseCookies, sessionCookie } from './cookies.ts'
import type { Logger } from '../log.ts'
import { serveStatic } from './static-files.ts'
import { handleDownload } from './downloads.ts'
import type { DownloadsContext } from './downloads.ts'
import { handleStatementDownload } from './statement-download.ts'
import { applySecurityHeaders } from './security-headers.ts'
import { crossSiteRefusal } from './request-guard.ts'
import { handleUpload } from './dataset-upload.ts'

/** Sockets the HTTP server holds: all together, from one address, and how long one may sit idle. */
export interface ConnectionLimits { total: number, perAddress: number, idleMs: number }

/**
 * A socket that sent nothing used to be held for ever: 24k of them from one address took the
 * process's file descriptors (HTTP, Postgres and libp2p alike). Live streams send a ping every
 * 20 s (api/trpc.ts), well inside the idle time.
 */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { total: 4096, perAddress: 256, idleMs: 120_000 }

/**
 * Caps `server`'s sockets in total and per address (an IPv6 /64 counts once: address-key.ts)
 * and closes those idle for `idleMs`. Behind a trusted proxy every socket comes from the proxy,
 * so there only the total applies.
 */
export function limitConnections (server: Server, limits: ConnectionLimits, behindProxy: boolean): void {
  server.maxConnections = limits.total
  // With no 'timeout' listener, a socket idle this long is destroyed.
  server.setTimeout(limits.idleMs)
  if (behindProxy) return
  const open = new Map<string, number>()
  server.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress ?? '')
    const count = (open.get(key) ?? 0) + 1
    if (count > limits.perAddress) { socket.destroy(); return }
    open.set(key, count)
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1
      if (left <= 0) open.delete(key)
      else open.set(key, left)
    })
  })
}

export interface HttpServerOptions {
  host: string
  port: number
  services: ApiServices
  /** Folder of the built dashboard (web/dist). */
  webRoot: string
  downloads: DownloadsContext
  log: Logger
  /** Serve HTTPS directly with this certificate chain and key (PEM). */
  tls?: { cert: string, key: string }
  /**
   * A reverse proxy in front terminates TLS: believe its X-Forwarded-Proto (for the cookie's
   * Secure flag) and X-Forwarded-For (for per-address limits). Only set this behind a proxy.
   */
  trustProxy?: boolean
  /** Socket caps and idle time (DEFAULT_CONNECTION_LIMITS); tests lower them. */
  connectionLimits?: Partial<ConnectionLimits>
  /** Serve GET /metrics (Prometheus text format) from this; absent: /metrics is not found. */
  metrics?: { exposition: () => Promise<{ contentType: string, body: string }> }
}

/** What the request says about its scheme and sender, believing a proxy only when told to; the sender as per-address limits key it. */
function requestOrigin (req: IncomingMessage, options: HttpServerOptions): { secure: boolean, address: string } {
  const { secure, address } = claimedOrigin(req, options)
  return { secure, address: addressKey(address) }
}

function claimedOrigin (req: IncomingMessage, options: HttpServerOptions): { secure: boolean, address: string } {
  const socketAddress = req.socket.remoteAddress ?? 'unknown'
  if (options.tls !== undefined) return { secure: true, address: socketAddress }
  if (options.trustProxy !== true) return { secure: false, address: socketAddress }
  // The last entry is the one the proxy itself wrote: a proxy that appends (nginx's
  // $proxy_add_x_forwarded_for) keeps whatever the client sent in front of it.
  const lastOf = (header: string | string[] | undefined): string => String(header ?? '').split(',').at(-1)!.trim()
  // Some proxies write the client's port too ("203.0.113.7:51234", "[2001:db8::7]:443"); left
  // on, every source port would count as an address of its own to per-address limits.
  const hostOf = (entry: string): string =>
    /^\[([^\]]*)\](?::\d*)?$/.exec(entry)?.[1] ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d*$/.exec(entry)?.[1] ?? entry
  const forwarded = hostOf(lastOf(req.headers['x-forwarded-for']))
  return { secure: lastOf(req.headers['x-forwarded-proto']) === 'https', address: forwarded !== '' ? forwarded : socketAddress }
}

/** The largest body of an API call (a run spec, a pledge, a sign-in are a few KiB). */
export const MAX_API_BODY_BYTES = 256 * 1024
/** The largest body of an organizer's large call: `runs.uploadDataset` (8 MiB of text, JSON-escaped) or a spec of many shards. */
const MAX_LARGE_BODY_BYTES = 12 * 1024 * 1024
/** Calls that may carry large bodies, each alone in its request, and only from an organizer. */
const LARGE_BODY_PATHS = new Set(['/trpc/runs.uploadDataset', '/trpc/runs.create'])

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Barnraise</title>
<p>The dashboard has not been built. Run <code>pnpm --filter @barnraise/web build</code> and reload.
The API is up at <code>/trpc</code>.</p>`

function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Starts the HTTP side: /healthz, the tRPC API under /trpc, and the dashboard. */
export async function startHttpServer (options: HttpServerOptions): Promise<{ server: Server, url: string }> {
  const trpcHandler = (maxBodySize: number): ReturnType<typeof createHTTPHandler> => createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    maxBodySize,
    // The dashboard batches a page's few queries; a hundred calls in one request is an attack.
    maxBatchSize: 16,
    createContext: async ({ req, res }) => {
      const { secure, address } = requestOrigin(req, options)
      const token = parseCookies(req.headers.cookie).get(SESSION_COOKIE)
      const user = await userForSession(options.services.db, token)
      return {
        ...options.services,
        user,
        sessionToken: user === null ? undefined : token,
        setSessionCookie: (value: string, expiresAt: Date) => { res.appendHeader('set-cookie', sessionCookie(SESSION_COOKIE, value, expiresAt, secure)) },
        clearSessionCookie: () => { res.appendHeader('set-cookie', sessionCookie(SESSION_COOKIE, '', null, secure)) },
        clientAddress: address,
        setResponseHeader: (name: string, value: string) => { res.setHeader(name, value) }
      }
    },
    onError: ({ error, path }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR') options.log.error('api error', { path, err: error.cause ?? error })
    }
  })
  // JSON is parsed whole, on this thread, before any check: 10 MB nested `[[[…]]]` held every
  // request for seconds. Calls get a small body, except an organizer's dataset upload, alone
  // in its request, which may be as large as its files, and a run spec listing many shards.
  const trpc = trpcHandler(MAX_API_BODY_BYTES)
  const trpcLarge = trpcHandler(MAX_LARGE_BODY_BYTES)
  const mayUpload = async (req: IncomingMessage): Promise<boolean> => {
    const user = await userForSession(options.services.db, parseCookies(req.headers.cookie).get(SESSION_COOKIE))
    return user !== null && hasRole(user.roles, 'organizer')
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    applySecurityHeaders(res, claimedOrigin(req, options).secure)
    // Later handlers parse the target again; one that cannot be parsed is the client's error.
    if (!URL.canParse(req.url ?? '/', 'http://localhost')) { req.resume(); sendJson(res, 400, { error: 'the request target is not a valid URL path' }); return }
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    if (path === '/healthz') { sendJson(res, 200, { ok: true }); return }
    if (path.startsWith('/trpc/')) {
      const refusal = crossSiteRefusal(req)
      if (refusal !== null) { req.resume(); sendJson(res, 403, { error: refusal }); return }
      if (LARGE_BODY_PATHS.has(path) && await mayUpload(req)) trpcLarge(req, res)
      else trpc(req, res)
      return
    }
    if (path.startsWith('/api/') && await handleUpload(options.services, req, res, path)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') { sendJson(res, 405, { error: 'method not allowed' }); return }
    if (path === '/metrics' && options.metrics !== undefined) {
      const { contentType, body } = await options.metrics.exposition()
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : body)
      return
    }
    if (await handleStatementDownload(options.downloads, res, path)) return
    if (await handleDownload(options.downloads, req, res, path)) return
    if (await serveStatic(options.webRoot, req, res)) return
    if (path.includes('.')) { sendJson(res, 404, { error: 'not found' }); return }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(NOT_BUILT)
  }
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      options.log.error('http handler failed', { url: req.url, err })
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' })
      else res.destroy()
    })
  }
  const server = options.tls !== undefined ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, listener) : createServer(listener)
  limitConnections(server, { ...DEFAULT_CONNECTION_LIMITS, ...options.connectionLimits }, options.trustProxy === true)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return { server, url: `${options.tls !== undefined ? 'https' : 'http'}://${host}:${address.port}/` }
}

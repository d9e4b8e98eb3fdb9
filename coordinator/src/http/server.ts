import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { createHTTPHandler } from '@trpc/server/adapters/standalone'
import { appRouter } from '../api/router.ts'
import type { ApiServices } from '../api/context.ts'
import { SESSION_COOKIE, userForSession } from '../accounts/accounts.ts'
import { hasRole } from '../accounts/roles.ts'
import { addressKey, isLoopbackAddress, networkOf } from './address-key.ts'
import { parseCookies, sessionCookie } from './cookies.ts'
import type { Logger } from '../log.ts'
import { serveStatic } from './static-files.ts'
import { handleDownload } from './downloads.ts'
import type { DownloadsContext } from './downloads.ts'
import { handleStatementDownload } from './statement-download.ts'
import { applySecurityHeaders } from './security-headers.ts'
import { crossSiteRefusal } from './request-guard.ts'
import { handleUpload } from './dataset-upload.ts'
import { CoordinatorError } from '../errors.ts'
import { KeyCounts } from '../limits/key-counts.ts'

/**
 * Sockets the HTTP server holds: all together, from one address, from one network, how long one
 * may sit idle, and how long a request's handler may go without sending a byte.
 */
export interface ConnectionLimits { total: number, perAddress: number, perNetwork: number, idleMs: number, handlerSilenceMs: number }

/**
 * A socket that sent nothing used to be held for ever: 24k of them from one address took the
 * process's file descriptors (HTTP, Postgres and libp2p alike). Live streams send a ping every
 * 20 s (api/trpc.ts), well inside the idle time. One IPv6 /48 (one customer's, 65536 /64s)
 * could still take every socket 256 at a time, so a network gets a quarter of the total.
 * The slowest honest handler, `runs.create` with a URL dataset, fetches for at most 3 minutes
 * (run-resolution.ts); ten minutes of a handler's silence is a handler that will not finish.
 */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { total: 4096, perAddress: 256, perNetwork: 1024, idleMs: 120_000, handlerSilenceMs: 600_000 }

/** Told when a handler's silence outlasted `handlerSilenceMs` and its socket was closed. */
export type SilentHandlerListener = (req: IncomingMessage, silentMs: number) => void

/**
 * Closes sockets idle for the server's timeout, unless the silence is the server's own: the
 * request came in whole and its response has nothing waiting for the client to read. Node
 * cuts any idle socket, so a `runs.create` fetching a URL dataset's validation shard for minutes
 * lost its answer; a client that stops sending headers or a body (slowloris), stops reading a
 * response, or holds a connection open between requests is still cut. A handler that never
 * finishes (a bug, an await on something that never settles) no longer holds its socket for
 * ever either: after `handlerSilenceMs` without a byte either way the client gets a 503
 * `ERR_HANDLER_TIMEOUT` where nothing was sent yet, and the socket is closed.
 */
function closeSilentClients (server: Server, limits: ConnectionLimits, onSilentHandler?: SilentHandlerListener): void {
  // Per socket: responses not yet closed, and the request read last (a pipelined one is read
  // only after the one before it came in whole, so the last says whether the client is done).
  const exchanges = new WeakMap<Socket, { open: number, latest: IncomingMessage, response: ServerResponse }>()
  // Per socket the server is working on: its byte count and when it was last seen to change.
  const quiet = new WeakMap<Socket, { bytes: number, since: number }>()
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const exchange = exchanges.get(req.socket) ?? { open: 0, latest: req, response: res }
    exchange.open++
    exchange.latest = req
    exchange.response = res
    exchanges.set(req.socket, exchange)
    res.once('close', () => { exchange.open-- })
  })
  // With a 'timeout' listener Node leaves the socket to us; Node re-arms the timer on the next
  // byte in or out, so a silent handler's socket is re-armed here to be asked about again.
  server.on('timeout', (socket: Socket) => {
    const exchange = exchanges.get(socket)
    const serverIsWorking = exchange !== undefined && exchange.open > 0 && exchange.latest.complete && socket.writableLength === 0
    if (!serverIsWorking) { socket.destroy(); return }
    const now = Date.now()
    const bytes = socket.bytesRead + socket.bytesWritten
    const seen = quiet.get(socket)
    // The timer fired after idleMs of silence, so the silence began that long ago.
    if (seen === undefined || seen.bytes !== bytes) quiet.set(socket, { bytes, since: now - limits.idleMs })
    const silentMs = now - (quiet.get(socket)?.since ?? now)
    if (silentMs < limits.handlerSilenceMs) { socket.setTimeout(Math.min(limits.idleMs, limits.handlerSilenceMs - silentMs)); return }
    onSilentHandler?.(exchange.latest, silentMs)
    const res = exchange.response
    // The handler may still write later: onto a destroyed socket, never as an unhandled error.
    res.on('error', () => {})
    if (!res.headersSent) {
      const body = JSON.stringify({ error: { code: 'ERR_HANDLER_TIMEOUT', message: `the server did not answer within ${Math.round(silentMs / 1000)} s; try again, and tell the operator if it keeps happening` } })
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close' })
      res.end(body, () => { socket.destroy() })
      // A client that does not read the 503 is not waited for.
      setTimeout(() => { socket.destroy() }, 1000).unref()
    } else {
      socket.destroy()
    }
  })
}

/**
 * Caps `server`'s sockets in total, per address (an IPv6 /64 counts once: address-key.ts) and
 * per network (an IPv6 /48; an IPv4 address is its own), and closes those whose client is idle
 * for `idleMs`. Behind a trusted proxy every socket comes from the proxy, so there only the
 * total applies.
 */
export function limitConnections (server: Server, limits: ConnectionLimits, behindProxy: boolean, onSilentHandler?: SilentHandlerListener): void {
  server.maxConnections = limits.total
  server.setTimeout(limits.idleMs)
  closeSilentClients(server, limits, onSilentHandler)
  if (behindProxy) return
  const perAddress = new KeyCounts()
  const perNetwork = new KeyCounts()
  server.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress ?? '')
    // IPv4 is capped per address only: its networks are not handed out whole as IPv6 /48s are.
    const wider = networkOf(key)
    const network = wider !== key ? wider : undefined
    if (perAddress.get(key) >= limits.perAddress || (network !== undefined && perNetwork.get(network) >= limits.perNetwork)) { socket.destroy(); return }
    perAddress.add(key)
    if (network !== undefined) perNetwork.add(network)
    socket.once('close', () => {
      perAddress.remove(key)
      if (network !== undefined) perNetwork.remove(network)
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
   * Secure flag) and X-Forwarded-For (for per-address limits and who may read /metrics). Only
   * set this behind a proxy.
   */
  trustProxy?: boolean
  /** Socket caps and idle time (DEFAULT_CONNECTION_LIMITS); tests lower them. */
  connectionLimits?: Partial<ConnectionLimits>
  /** Serve GET /metrics (Prometheus text format) from this; absent: /metrics is not found. */
  metrics?: { exposition: () => Promise<{ contentType: string, body: string }> }
  /** Callers other than loopback may read /metrics with `Authorization: Bearer <this>`; absent: loopback only. */
  metricsToken?: string
}

/** What the request says about its scheme and sender, believing a proxy only when told to; the sender as per-address limits key it. */
function requestOrigin (req: IncomingMessage, options: HttpServerOptions): { secure: boolean, address: string } {
  const { secure, address } = claimedOrigin(req, options)
  return { secure, address: addressKey(address) }
}

/** The last entry of a proxy's comma-separated header: a proxy that appends (nginx's $proxy_add_x_forwarded_for) keeps whatever the client sent in front of it. */
function lastOf (header: string | string[] | undefined): string {
  return String(header ?? '').split(',').at(-1)!.trim()
}

/** The client address the proxy wrote into X-Forwarded-For, without a port; '' when there is none. */
function forwardedFor (req: IncomingMessage): string {
  // Some proxies write the client's port too ("203.0.113.7:51234", "[2001:db8::7]:443"); left
  // on, every source port would count as an address of its own to per-address limits.
  const entry = lastOf(req.headers['x-forwarded-for'])
  return /^\[([^\]]*)\](?::\d*)?$/.exec(entry)?.[1] ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d*$/.exec(entry)?.[1] ?? entry
}

function claimedOrigin (req: IncomingMessage, options: HttpServerOptions): { secure: boolean, address: string } {
  const socketAddress = req.socket.remoteAddress ?? 'unknown'
  if (options.tls !== undefined) return { secure: true, address: socketAddress }
  if (options.trustProxy !== true) return { secure: false, address: socketAddress }
  const forwarded = forwardedFor(req)
  return { secure: lastOf(req.headers['x-forwarded-proto']) === 'https', address: forwarded !== '' ? forwarded : socketAddress }
}

/**
 * A logger of, once per server (a coordinator runs one), that a request's X-Forwarded-For is
 * ignored because the proxy is not trusted: once is enough to point an operator at --trust-proxy.
 */
function forwardedIgnoredWarning (options: HttpServerOptions): (req: IncomingMessage) => void {
  let warned = false
  return (req) => {
    if (warned || options.trustProxy === true || req.headers['x-forwarded-for'] === undefined) return
    warned = true
    options.log.warn('a request carried X-Forwarded-For, which is ignored: per-address limits count the socket\'s address. ' +
      'If this coordinator sits behind a reverse proxy, start it with --trust-proxy (only then); this is said once', {
      header: 'x-forwarded-for',
      socketAddress: req.socket.remoteAddress ?? 'unknown',
      flag: '--trust-proxy'
    })
  }
}

/** Whether two secrets are equal, in time that does not depend on where they differ (both are hashed first, so their lengths leak nothing either). */
function sameSecret (given: string, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()
  return timingSafeEqual(digest(given), digest(expected))
}

/** The smallest metrics token accepted: shorter ones can be guessed. */
export const MIN_METRICS_TOKEN_LENGTH = 16

/** Why `token` cannot be the metrics token (too short, or not printable ASCII fit for a header), or null. */
export function metricsTokenProblem (token: string): string | null {
  if (!/^[\x21-\x7e]*$/.test(token)) return 'the metrics token must be printable ASCII without spaces (it travels in an Authorization header)'
  if (token.length < MIN_METRICS_TOKEN_LENGTH) return `the metrics token must be at least ${MIN_METRICS_TOKEN_LENGTH} characters; make one with \`openssl rand -hex 32\``
  if (token.length > 1024) return 'the metrics token may be at most 1024 characters'
  return null
}

/**
 * Why this request may not read /metrics, or null. The counts tell strangers how busy the
 * coordinator is and how its defences fire, so only this machine may read them, or a caller
 * with the operator's token. Behind a trusted proxy every socket is the proxy's (often on
 * loopback itself), so there the caller is the address the proxy wrote, and a request it wrote
 * none for is not local.
 */
function metricsRefusal (req: IncomingMessage, options: HttpServerOptions): { status: number, code: string, error: string } | null {
  // The socket must be this machine's either way: behind a proxy, X-Forwarded-For is believed
  // only from the proxy, and a coordinator whose HTTP port strangers can reach directly (one
  // --host for HTTP and libp2p) would otherwise open /metrics to a forged "127.0.0.1".
  const socketLocal = isLoopbackAddress(req.socket.remoteAddress ?? '')
  const behindProxy = options.trustProxy === true && options.tls === undefined
  if (socketLocal && (!behindProxy || isLoopbackAddress(forwardedFor(req)))) return null
  const token = options.metricsToken
  if (token === undefined) {
    return {
      status: 403,
      code: 'ERR_METRICS_LOOPBACK_ONLY',
      error: 'GET /metrics answers only callers on the coordinator\'s own machine; to scrape it from elsewhere, start the coordinator with ' +
        '--metrics-token-file FILE (or BARNRAISE_METRICS_TOKEN) and send Authorization: Bearer <token>'
    }
  }
  const given = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1]
  if (given !== undefined && sameSecret(given, token)) return null
  return {
    status: 401,
    code: 'ERR_METRICS_TOKEN',
    error: given === undefined
      ? 'GET /metrics from another machine needs Authorization: Bearer <the token the coordinator was started with>'
      : 'the bearer token is not the coordinator\'s metrics token'
  }
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
  const tokenProblem = options.metricsToken === undefined ? null : metricsTokenProblem(options.metricsToken)
  if (tokenProblem !== null) throw new CoordinatorError('ERR_INVALID_INPUT', tokenProblem)
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
  const warnIfForwardedIgnored = forwardedIgnoredWarning(options)
  // As claimedOrigin: a coordinator serving TLS itself has no proxy in front.
  const origins = { trustProxy: options.trustProxy === true && options.tls === undefined }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    applySecurityHeaders(res, claimedOrigin(req, options).secure)
    warnIfForwardedIgnored(req)
    // Later handlers parse the target again; one that cannot be parsed is the client's error.
    if (!URL.canParse(req.url ?? '/', 'http://localhost')) { req.resume(); sendJson(res, 400, { error: 'the request target is not a valid URL path' }); return }
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    if (path === '/healthz') { sendJson(res, 200, { ok: true }); return }
    if (path.startsWith('/trpc/')) {
      const refusal = crossSiteRefusal(req, origins)
      if (refusal !== null) { req.resume(); sendJson(res, 403, { error: refusal }); return }
      if (LARGE_BODY_PATHS.has(path) && await mayUpload(req)) trpcLarge(req, res)
      else trpc(req, res)
      return
    }
    if (path.startsWith('/api/') && await handleUpload(options.services, req, res, path, origins)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') { sendJson(res, 405, { error: 'method not allowed' }); return }
    if (path === '/metrics' && options.metrics !== undefined) {
      const refusal = metricsRefusal(req, options)
      if (refusal !== null) {
        if (refusal.status === 401) res.setHeader('www-authenticate', 'Bearer realm="metrics"')
        sendJson(res, refusal.status, { code: refusal.code, error: refusal.error })
        return
      }
      const { contentType, body } = await options.metrics.exposition()
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : body)
      return
    }
    if (await handleStatementDownload(options.downloads, res, path, requestOrigin(req, options).address)) return
    if (await handleDownload(options.downloads, req, res, path, requestOrigin(req, options).address)) return
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
  limitConnections(server, { ...DEFAULT_CONNECTION_LIMITS, ...options.connectionLimits }, options.trustProxy === true, (req, silentMs) => {
    // The path only: a query string may carry what a log should not keep.
    options.log.warn('a request handler was silent too long; its socket was closed', { method: req.method, path: (req.url ?? '').split('?')[0], silentSeconds: Math.round(silentMs / 1000) })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return { server, url: `${options.tls !== undefined ? 'https' : 'http'}://${host}:${address.port}/` }
}

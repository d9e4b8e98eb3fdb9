import { afterEach, test } from 'vitest'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import type { IncomingHttpHeaders, Server } from 'node:http'
import type { Socket } from 'node:net'
import type { ApiServices } from '../api/context.ts'
import type { Logger } from '../log.ts'
import type { DownloadsContext } from './downloads.ts'
import { startHttpServer } from './server.ts'
import type { HttpServerOptions } from './server.ts'

/** What the routes under test never read: any use fails the test instead of passing by accident. */
const untouched = new Proxy({}, { get: (_target, key) => { throw new Error(`the test reached services.${String(key)}`) } })

interface Logged { level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown> }

function capturingLog (lines: Logged[]): Logger {
  const log: Logger = {
    info: (msg, fields) => { lines.push({ level: 'info', msg, ...(fields !== undefined ? { fields } : {}) }) },
    warn: (msg, fields) => { lines.push({ level: 'warn', msg, ...(fields !== undefined ? { fields } : {}) }) },
    error: (msg, fields) => { lines.push({ level: 'error', msg, ...(fields !== undefined ? { fields } : {}) }) },
    child: () => log
  }
  return log
}

const servers: Server[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise((resolve) => { server.close(resolve) })
  }
})

/**
 * Starts the HTTP server on loopback with a stand-in metrics registry. `from(address)` makes the
 * next connection look as if it came from that address (every socket here is really from
 * 127.0.0.1), as the kernel would report a remote client's.
 */
async function start (options: Partial<HttpServerOptions> = {}): Promise<{ url: string, scrapes: () => number, from: (address: string) => void }> {
  let scrapes = 0
  const { server, url } = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    services: untouched as ApiServices,
    webRoot: '/nonexistent',
    downloads: untouched as DownloadsContext,
    log: capturingLog([]),
    metrics: { exposition: async () => { scrapes++; return { contentType: 'text/plain; version=0.0.4', body: 'barnraise_rounds_total 1\n' } } },
    ...options
  })
  servers.push(server)
  let next: string | undefined
  server.prependListener('connection', (socket: Socket) => {
    if (next !== undefined) Object.defineProperty(socket, 'remoteAddress', { value: next })
    next = undefined
  })
  return { url, scrapes: () => scrapes, from: (address) => { next = address } }
}

/** One GET on a connection of its own (so a faked address applies to it alone). */
async function get (url: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: IncomingHttpHeaders, body: string }> {
  return await new Promise((resolve, reject) => {
    request(url, { agent: false, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    }).on('error', reject).end()
  })
}

test('without a token, /metrics answers only callers on this machine, and tells others how to get in', async () => {
  const server = await start()
  const metrics = new URL('metrics', server.url).toString()
  const local = await get(metrics)
  assert.equal(local.status, 200)
  assert.equal(local.body, 'barnraise_rounds_total 1\n')
  for (const loopback of ['::1', '::ffff:127.0.0.1', '127.0.0.2']) {
    server.from(loopback)
    assert.equal((await get(metrics)).status, 200, loopback)
  }
  for (const stranger of ['203.0.113.9', '2001:db8::9', '::ffff:203.0.113.9', '64:ff9b::127.0.0.1']) {
    server.from(stranger)
    const refused = await get(metrics, { authorization: 'Bearer some-token-nobody-configured' })
    assert.equal(refused.status, 403, stranger)
    assert.match(String(refused.headers['content-type']), /^application\/json/)
    const body = JSON.parse(refused.body) as { code: string, error: string }
    assert.equal(body.code, 'ERR_METRICS_LOOPBACK_ONLY')
    assert.match(body.error, /--metrics-token-file/)
  }
  assert.equal(server.scrapes(), 4, 'a refused caller never reaches the registry')
})

test('with a token, a caller elsewhere needs exactly that token as a bearer; loopback still needs none', async () => {
  const token = 'correct-horse-battery-staple-42'
  const server = await start({ metricsToken: token })
  const metrics = new URL('metrics', server.url).toString()
  const refusals: Array<Record<string, string>> = [
    {},
    { authorization: 'Bearer wrong-horse-battery-staple-42' },
    { authorization: `Bearer ${token.slice(0, -1)}` },
    { authorization: `Bearer ${token}x` },
    { authorization: `Basic ${Buffer.from(`metrics:${token}`).toString('base64')}` },
    { authorization: token }
  ]
  for (const headers of refusals) {
    server.from('203.0.113.9')
    const refused = await get(metrics, headers)
    assert.equal(refused.status, 401, JSON.stringify(headers))
    assert.equal(refused.headers['www-authenticate'], 'Bearer realm="metrics"')
    assert.equal((JSON.parse(refused.body) as { code: string }).code, 'ERR_METRICS_TOKEN')
  }
  for (const authorization of [`Bearer ${token}`, `bearer ${token}`]) {
    server.from('203.0.113.9')
    const allowed = await get(metrics, { authorization })
    assert.equal(allowed.status, 200, authorization)
    assert.equal(allowed.body, 'barnraise_rounds_total 1\n')
  }
  assert.equal((await get(metrics)).status, 200, 'loopback')
  assert.equal(server.scrapes(), 3)
})

test('behind a trusted proxy the caller is the address the proxy wrote, and a request it wrote none for is not local', async () => {
  const lines: Logged[] = []
  // The proxy itself connects from loopback, as a reverse proxy on the same machine does.
  const server = await start({ trustProxy: true, log: capturingLog(lines) })
  const metrics = new URL('metrics', server.url).toString()
  assert.equal((await get(metrics, { 'x-forwarded-for': '203.0.113.9' })).status, 403)
  assert.equal((await get(metrics, { 'x-forwarded-for': '127.0.0.1, 203.0.113.9' })).status, 403, 'a client cannot put loopback in front of the entry the proxy appends')
  assert.equal((await get(metrics)).status, 403, 'no X-Forwarded-For: a proxy that wrote none, not this machine')
  assert.equal((await get(metrics, { 'x-forwarded-for': '203.0.113.9, 127.0.0.1' })).status, 200)
  // A stranger who reaches the HTTP port directly, not through the proxy, and forges the header.
  server.from('203.0.113.9')
  assert.equal((await get(metrics, { 'x-forwarded-for': '127.0.0.1' })).status, 403, 'the socket must be this machine\'s too')
  assert.equal(server.scrapes(), 1)
  assert.deepEqual(lines.filter((l) => l.level === 'warn'), [], 'with --trust-proxy the header is believed, not warned about')
})

test('X-Forwarded-For without --trust-proxy is ignored and said so once per server, pointing at --trust-proxy', async () => {
  const lines: Logged[] = []
  const first = await start({ log: capturingLog(lines) })
  const healthz = new URL('healthz', first.url).toString()
  assert.equal((await get(healthz)).status, 200)
  assert.equal(lines.length, 0, 'no header, nothing to say')
  for (let i = 0; i < 3; i++) assert.equal((await get(healthz, { 'x-forwarded-for': `198.51.100.${i}` })).status, 200)
  // Ignored indeed: a forwarded loopback address does not open /metrics.
  assert.equal((await get(new URL('metrics', first.url).toString(), { 'x-forwarded-for': '127.0.0.1' })).status, 200, 'the socket is loopback here')
  first.from('203.0.113.9')
  assert.equal((await get(new URL('metrics', first.url).toString(), { 'x-forwarded-for': '127.0.0.1' })).status, 403, 'the header does not make a stranger local')
  assert.equal(lines.length, 1)
  const [warning] = lines
  assert.equal(warning!.level, 'warn')
  assert.match(warning!.msg, /X-Forwarded-For.*ignored.*--trust-proxy/s)
  assert.equal(warning!.fields?.flag, '--trust-proxy')
  assert.equal(warning!.fields?.header, 'x-forwarded-for')
  // Another server (a coordinator runs one) says it once too, for its own operator's log.
  const again: Logged[] = []
  const second = await start({ log: capturingLog(again) })
  for (let i = 0; i < 2; i++) assert.equal((await get(new URL('healthz', second.url).toString(), { 'x-forwarded-for': '198.51.100.7' })).status, 200)
  assert.equal(again.length, 1)
})

test('a metrics token that could be guessed, or cannot travel in a header, is refused at start', async () => {
  for (const metricsToken of ['short', '', 'sixteen chars ok'.padEnd(20, 'x'), 'é'.repeat(20)]) {
    await assert.rejects(start({ metricsToken }), (err: Error & { code?: string }) => err.code === 'ERR_INVALID_INPUT' && /metrics token/.test(err.message), metricsToken)
  }
})

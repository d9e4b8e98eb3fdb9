import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import type { Server } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEFAULT_CONNECTION_LIMITS, limitConnections } from './server.ts'

const closed = async (socket: Socket): Promise<void> => { await new Promise<void>((resolve) => { socket.once('close', () => { resolve() }) }) }

async function listen (server: Server): Promise<number> {
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  return (server.address() as AddressInfo).port
}

async function shut (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise((resolve) => { server.close(resolve) })
}

async function openSocket (port: number): Promise<Socket> {
  const socket = await new Promise<Socket>((resolve, reject) => { const s = connect(port, '127.0.0.1', () => { resolve(s) }); s.once('error', reject) })
  // A socket the server refuses may fail its write: that shows as 'closed', not as a crash.
  socket.on('error', () => {})
  return socket
}

/** Sends one GET on a kept-alive socket and resolves with what came back first, or 'closed' if the server closed it unanswered. */
async function ask (socket: Socket): Promise<string> {
  return await new Promise((resolve) => {
    socket.once('data', (chunk: Buffer) => { resolve(chunk.toString('latin1')) })
    socket.once('close', () => { resolve('closed') })
    socket.write('GET / HTTP/1.1\r\nhost: test\r\n\r\n')
  })
}

test('sockets are capped per address and closed when idle, so silent connections cannot take the process\'s descriptors', async () => {
  const server = createServer((_req, res) => { res.end('ok') })
  limitConnections(server, { total: 100, perAddress: 2, perNetwork: 100, idleMs: 400, handlerSilenceMs: 600_000 }, false)
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  const open = async (): Promise<Socket> => await new Promise((resolve, reject) => { const s = connect(port, '127.0.0.1', () => { resolve(s) }); s.once('error', reject) })
  try {
    const first = await open()
    const second = await open()
    // A third from the same address is closed at once, before it sends anything.
    const third = await open()
    await closed(third)
    // The first two send nothing and are closed once idle; then the address may connect again.
    await Promise.all([closed(first), closed(second)])
    const res = await fetch(`http://127.0.0.1:${port}/`)
    assert.equal(await res.text(), 'ok')
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => { server.close(resolve) })
  }
})

test('behind a trusted proxy every socket is the proxy\'s: only the total applies', async () => {
  const server = createServer((_req, res) => { res.end('ok') })
  limitConnections(server, { total: 100, perAddress: 1, perNetwork: 1, idleMs: 60_000, handlerSilenceMs: 600_000 }, true)
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  try {
    const responses = await Promise.all([1, 2, 3].map(async () => await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } })).text()))
    assert.deepEqual(responses, ['ok', 'ok', 'ok'])
    assert.equal(server.maxConnections, 100)
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => { server.close(resolve) })
  }
})

test('one IPv6 /48 is capped as a network, however many /64s it steps through; IPv4 stays per address', async () => {
  assert.ok(DEFAULT_CONNECTION_LIMITS.perNetwork < DEFAULT_CONNECTION_LIMITS.total, 'by default one network cannot fill the total')
  const server = createServer((_req, res) => { res.end('ok') })
  // Kept-alive sockets stay counted for the whole test.
  server.keepAliveTimeout = 600_000
  // Every socket here comes from 127.0.0.1; each is given the next address of this list, as
  // the kernel would give a client's, before the caps see it.
  const addresses: string[] = []
  const serverSide = new Map<string, Socket>()
  server.prependListener('connection', (socket: Socket) => {
    const address = addresses.shift()!
    Object.defineProperty(socket, 'remoteAddress', { value: address })
    serverSide.set(address, socket)
  })
  limitConnections(server, { total: 100, perAddress: 2, perNetwork: 3, idleMs: 600_000, handlerSilenceMs: 600_000 }, false)
  const port = await listen(server)
  const from = async (address: string): Promise<Socket> => { addresses.push(address); return await openSocket(port) }
  try {
    // Three /64s of 2001:db8:1::/48, one socket each: under every per-address cap, and served.
    const first = []
    for (const a of ['2001:db8:1:1::1', '2001:db8:1:2::1', '2001:db8:1:3::1']) first.push(await from(a))
    for (const socket of first) assert.match(await ask(socket), /^HTTP\/1\.1 200/)
    // A fourth /64 of the same /48 is closed unanswered: the network holds its three.
    assert.equal(await ask(await from('2001:0db8:0001:ffff::9')), 'closed')
    // Another /48 is another network.
    assert.match(await ask(await from('2001:db8:2::1')), /^HTTP\/1\.1 200/)
    // IPv4 addresses of one /24 are each their own network: four where a network may hold three.
    const v4 = []
    for (const a of ['198.51.100.1', '198.51.100.2', '198.51.100.3', '::ffff:198.51.100.4']) v4.push(await from(a))
    for (const socket of v4) assert.match(await ask(socket), /^HTTP\/1\.1 200/)
    // A socket of the /48 that closes makes room for another (once the server saw it close;
    // the caps let go of it before this listener, added later, hears of it).
    const released = closed(serverSide.get('2001:db8:1:1::1')!)
    first[0]!.destroy()
    await released
    assert.match(await ask(await from('2001:db8:1:5::1')), /^HTTP\/1\.1 200/)
  } finally {
    await shut(server)
  }
})

test('a request whose handler works longer than the idle time without writing is still answered', async () => {
  // A handler silent four idle times long, as `runs.create` is while it fetches a URL dataset's
  // validation shard. The idle timer was armed when the request arrived and this wait starts
  // after it, so the idle timer always fires first: no race with the machine's speed.
  const idleMs = 100
  const server = createServer((_req, res) => { sleep(idleMs * 4).then(() => { res.end('done') }, () => {}) })
  limitConnections(server, { total: 100, perAddress: 10, perNetwork: 10, idleMs, handlerSilenceMs: 600_000 }, false)
  const port = await listen(server)
  try {
    const answer = await fetch(`http://127.0.0.1:${port}/`).then(async (res) => await res.text(), (err: Error) => `cut off: ${String((err.cause as Error | undefined)?.message ?? err.message)}`)
    assert.equal(answer, 'done')
  } finally {
    await shut(server)
  }
})

test('a client that goes silent is still cut off: headers unfinished, a body unfinished, a response it does not read', async () => {
  const chunk = Buffer.alloc(1024 * 1024)
  let bigClosed!: Promise<void>
  let bigAsked!: () => void
  const bigSeen = new Promise<void>((resolve) => { bigAsked = resolve })
  const server = createServer((req, res) => {
    if (req.url === '/big') {
      // An endless body, written as fast as the client takes it: once the kernel's buffers are
      // full, the server's writes wait on the client, which never reads.
      bigClosed = new Promise((resolve) => { res.once('close', resolve) })
      bigAsked()
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump)
      }
      pump()
      return
    }
    req.resume()
    req.once('end', () => { res.end('read') })
  })
  limitConnections(server, { total: 100, perAddress: 10, perNetwork: 10, idleMs: 200, handlerSilenceMs: 600_000 }, false)
  const port = await listen(server)
  try {
    const partialHeaders = await openSocket(port)
    partialHeaders.resume()
    partialHeaders.write('GET / HTTP/1.1\r\nhost: test\r\n')
    const partialBody = await openSocket(port)
    partialBody.resume()
    partialBody.write(`POST / HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n${'x'.repeat(10)}`)
    const nonReader = await openSocket(port)
    // Never read: the socket's buffers fill and the server's writes wait.
    nonReader.pause()
    nonReader.write('GET /big HTTP/1.1\r\nhost: test\r\n\r\n')
    await Promise.all([closed(partialHeaders), closed(partialBody)])
    await bigSeen
    await bigClosed
    nonReader.destroy()
  } finally {
    await shut(server)
  }
})

test('a handler that never finishes is answered 503 ERR_HANDLER_TIMEOUT once silent too long; one that keeps writing is not cut', async () => {
  const idleMs = 100
  const handlerSilenceMs = 450
  const told: Array<{ url: string | undefined, silentMs: number }> = []
  const server = createServer((req, res) => {
    if (req.url === '/stream') {
      // A live stream: a byte every idle time, for longer than the silence cap, then done.
      res.writeHead(200)
      let n = 0
      const tick = setInterval(() => { if (++n === 10) { clearInterval(tick); res.end('.') } else res.write('.') }, idleMs)
      return
    }
    // Never answers: as a handler awaiting a promise that never settles.
  })
  limitConnections(server, { total: 100, perAddress: 10, perNetwork: 10, idleMs, handlerSilenceMs }, false, (req, silentMs) => { told.push({ url: req.url, silentMs }) })
  const port = await listen(server)
  try {
    const started = Date.now()
    const res = await fetch(`http://127.0.0.1:${port}/stuck?secret=1`)
    const waited = Date.now() - started
    assert.equal(res.status, 503)
    const body = await res.json() as { error: { code: string } }
    assert.equal(body.error.code, 'ERR_HANDLER_TIMEOUT')
    assert.ok(waited >= handlerSilenceMs, `answered after ${waited} ms, before the cap`)
    assert.equal(told.length, 1)
    assert.equal(told[0]!.url, '/stuck?secret=1')
    assert.ok(told[0]!.silentMs >= handlerSilenceMs)
    const stream = await fetch(`http://127.0.0.1:${port}/stream`)
    assert.equal(await stream.text(), '..........')
    assert.equal(told.length, 1)
  } finally {
    await shut(server)
  }
})

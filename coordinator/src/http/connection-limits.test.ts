import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { limitConnections } from './server.ts'

const closed = async (socket: Socket): Promise<void> => { await new Promise<void>((resolve) => { socket.once('close', () => { resolve() }) }) }

test('sockets are capped per address and closed when idle, so silent connections cannot take the process\'s descriptors', async () => {
  const server = createServer((_req, res) => { res.end('ok') })
  limitConnections(server, { total: 100, perAddress: 2, idleMs: 400 }, false)
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
  limitConnections(server, { total: 100, perAddress: 1, idleMs: 60_000 }, true)
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

import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { mkdtemp, writeFile, mkdir, readdir, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serveStatic } from './static-files.ts'

test('serves the dashboard, falls back to index.html for routes, and never leaves its folder', async () => {
  const parent = await mkdtemp(join(tmpdir(), 'barnraise-static-'))
  const root = join(parent, 'dist')
  await mkdir(join(root, 'assets'), { recursive: true })
  await writeFile(join(root, 'index.html'), '<html>app</html>')
  await writeFile(join(root, 'assets', 'app.js'), 'console.log(1)')
  await writeFile(join(parent, 'secret.txt'), 'do not serve')
  const server = createServer((req, res) => {
    void serveStatic(root, req, res).then((served) => { if (!served) res.writeHead(404).end('miss') })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  try {
    const get = async (path: string): Promise<[number, string, string | null]> => {
      const res = await fetch(base + path)
      return [res.status, await res.text(), res.headers.get('cache-control')]
    }
    assert.deepEqual(await get('/'), [200, '<html>app</html>', 'no-cache'])
    assert.deepEqual(await get('/runs/some-id'), [200, '<html>app</html>', 'no-cache'])
    assert.deepEqual(await get('/assets/app.js'), [200, 'console.log(1)', 'public, max-age=31536000, immutable'])
    assert.equal((await get('/assets/missing.js'))[0], 404)
    for (const evil of ['/..%2fsecret.txt', '/%2e%2e/secret.txt', '/%E0%A4%A']) {
      const [, body] = await get(evil)
      assert.ok(!body.includes('do not serve'), evil)
    }
  } finally {
    server.close()
  }
})

/** How many of this process's open file descriptors name `file`. */
async function openDescriptors (file: string): Promise<number> {
  let n = 0
  for (const fd of await readdir('/proc/self/fd')) {
    if (await readlink(`/proc/self/fd/${fd}`).then((target) => target === file, () => false)) n++
  }
  return n
}

/** Polls `read` until it gives `want` (at most `tries` times, 20 ms apart); returns the last reading. */
async function settle (read: () => Promise<number>, want: number, tries = 150): Promise<number> {
  let value = await read()
  for (let i = 0; i < tries && value !== want; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    value = await read()
  }
  return value
}

test('a client that hangs up mid-download leaves no file open and no error behind', async () => {
  const parent = await mkdtemp(join(tmpdir(), 'barnraise-static-'))
  const root = join(parent, 'dist')
  await mkdir(join(root, 'assets'), { recursive: true })
  await writeFile(join(root, 'index.html'), '<html>app</html>')
  // Bigger than what the loopback socket buffers hold, so each reply stalls on a client that does not read.
  const asset = join(root, 'assets', 'big.js')
  await writeFile(asset, Buffer.alloc(16 * 1024 * 1024, 'x'))
  const failures: unknown[] = []
  let answered = 0
  const server = createServer((req, res) => {
    serveStatic(root, req, res).then(() => { answered++ }, (err: unknown) => { failures.push(err); res.destroy() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const clients = 12
  try {
    const sockets = await Promise.all(Array.from({ length: clients }, async () => await new Promise<Socket>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.pause()
        socket.write('GET /assets/big.js HTTP/1.1\r\nHost: x\r\n\r\n')
        resolve(socket)
      })
    })))
    assert.equal(await settle(async () => await openDescriptors(asset), clients), clients, 'every reply is under way, stalled')
    for (const socket of sockets) socket.destroy()
    assert.equal(await settle(async () => await openDescriptors(asset), 0), 0, 'the files of the replies cut short are closed')
    assert.equal(await settle(async () => answered, clients), clients, 'each request finished as served')
    assert.deepEqual(failures, [], 'a client hanging up is no error')
    assert.deepEqual(await fetch(`http://127.0.0.1:${port}/`).then(async (r) => [r.status, await r.text()]), [200, '<html>app</html>'])
  } finally {
    server.close()
    await rm(parent, { recursive: true, force: true })
  }
})

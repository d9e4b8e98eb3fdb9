import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises'
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

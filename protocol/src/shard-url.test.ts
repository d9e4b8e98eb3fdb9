import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { fetchShardBytes, namesPrivateHost, shardUrlRefusal } from './shard-url.ts'

describe('shard URLs', () => {
  it('refuses other schemes, credentials and literal private or loopback hosts unless allowed', () => {
    expect(shardUrlRefusal('https://data.example.org/shards/a.bin', false)).toBeNull()
    expect(shardUrlRefusal('ftp://data.example.org/a', false)).toMatch(/http\(s\)/)
    expect(shardUrlRefusal('file:///etc/passwd', false)).toMatch(/http\(s\)/)
    expect(shardUrlRefusal('https://user:pw@data.example.org/a', false)).toMatch(/credentials/)
    expect(shardUrlRefusal('not a url', false)).toMatch(/not a URL/)
    for (const host of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.9', '169.254.169.254', '100.64.0.1', '0.0.0.0', '[::1]', '[fd00::1]', '[fe80::1]', '[::ffff:127.0.0.1]', 'localhost', 'db.localhost']) {
      expect(shardUrlRefusal(`http://${host}/a`, false), host).toMatch(/private or loopback/)
      expect(shardUrlRefusal(`http://${host}/a`, true), host).toBeNull()
    }
    expect(namesPrivateHost('172.32.0.1')).toBe(false)
    expect(namesPrivateHost('8.8.8.8')).toBe(false)
  })

  it('fetches a body up to the limit and refuses a longer one, or a redirect', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/redirect') { res.writeHead(302, { location: 'http://127.0.0.1:1/x' }); res.end(); return }
      if (req.url === '/chunked') { res.write(Buffer.alloc(600)); res.end(Buffer.alloc(600)); return }
      res.end(Buffer.alloc(req.url === '/big' ? 2000 : 100, 7))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      expect((await fetchShardBytes(`${base}/small`, 1000)).byteLength).toBe(100)
      await expect(fetchShardBytes(`${base}/big`, 1000)).rejects.toThrow(/more than the 1000/)
      await expect(fetchShardBytes(`${base}/chunked`, 1000)).rejects.toThrow(/longer than the 1000/)
      await expect(fetchShardBytes(`${base}/redirect`, 1000)).rejects.toThrow()
    } finally {
      server.close()
    }
  })
})

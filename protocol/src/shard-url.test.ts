import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { fetchShardBytes, namesPrivateHost, publicOnlyLookup, shardUrlRefusal } from './shard-url.ts'
import type { ResolveAll } from './shard-url.ts'

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

  it('gives up on a server that goes quiet, before its headers or in the middle of the body', async () => {
    const held: Array<{ destroy: () => void }> = []
    const server = createServer((req, res) => {
      held.push(res)
      if (req.url === '/half') { res.writeHead(200, { 'content-length': '1000' }); res.write(Buffer.alloc(10)) }
      // '/silent': nothing at all, ever.
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      await expect(fetchShardBytes(`${base}/silent`, 1000, { allowPrivate: true, idleMs: 200 })).rejects.toThrow(/sent nothing for 0\.2 s/)
      await expect(fetchShardBytes(`${base}/half`, 1000, { allowPrivate: true, idleMs: 200 })).rejects.toThrow(/sent nothing for 0\.2 s/)
    } finally {
      for (const r of held) r.destroy()
      server.close()
    }
  })

  it('fetches a body up to the limit and refuses a longer one, or a redirect', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/redirect') { res.writeHead(302, { location: 'http://127.0.0.1:1/x' }); res.end(); return }
      if (req.url === '/chunked') { res.write(Buffer.alloc(600)); res.end(Buffer.alloc(600)); return }
      res.end(Buffer.alloc(req.url === '/big' ? 2000 : 100, 7))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    // A loopback server: allowed as a local test allows it.
    const local = { allowPrivate: true }
    try {
      expect((await fetchShardBytes(`${base}/small`, 1000, local)).byteLength).toBe(100)
      await expect(fetchShardBytes(`${base}/big`, 1000, local)).rejects.toThrow(/more than the 1000/)
      await expect(fetchShardBytes(`${base}/chunked`, 1000, local)).rejects.toThrow(/longer than the 1000/)
      await expect(fetchShardBytes(`${base}/redirect`, 1000, local)).rejects.toThrow(/redirects \(HTTP 302\)/)
      await expect(fetchShardBytes(`${base}/small`, 1000)).rejects.toThrow(/private or loopback/)
    } finally {
      server.close()
    }
  })

  it('refuses a public-looking name that resolves to a private address, on the address it would dial', async () => {
    let hits = 0
    const server = createServer((_req, res) => { hits++; res.end(Buffer.alloc(10, 1)) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    // A resolver standing in for DNS: the name points at this machine, as a rebinding attacker's would.
    const resolve: ResolveAll = (hostname, callback) => {
      if (hostname === 'shards.example.org') callback(null, [{ address: '127.0.0.1', family: 4 }])
      else if (hostname === 'mixed.example.org') callback(null, [{ address: '93.184.216.34', family: 4 }, { address: '10.0.0.7', family: 4 }])
      else callback(Object.assign(new Error(`unknown ${hostname}`), { code: 'ENOTFOUND' }), [])
    }
    try {
      expect(shardUrlRefusal(`http://shards.example.org:${port}/a`, false), 'the name alone passes the URL check').toBeNull()
      await expect(fetchShardBytes(`http://shards.example.org:${port}/a`, 1000, { resolve })).rejects.toThrow(/shards\.example\.org resolves to 127\.0\.0\.1, a private or loopback address/)
      await expect(fetchShardBytes(`http://mixed.example.org:${port}/a`, 1000, { resolve })).rejects.toThrow(/resolves to 10\.0\.0\.7/)
      expect(hits, 'nothing reached the private service').toBe(0)
      // The same lookup lets a public answer through (here the test's server stands in for it).
      const lookup = publicOnlyLookup((hostname, callback) => { callback(null, [{ address: '93.184.216.34', family: 4 }]) })
      const answer = await new Promise<string>((res, rej) => { lookup('data.example.org', {}, (err, address) => { if (err !== null) rej(err); else res(address as string) }) })
      expect(answer).toBe('93.184.216.34')
      expect((await fetchShardBytes(`http://127.0.0.1:${port}/a`, 1000, { allowPrivate: true })).byteLength).toBe(10)
    } finally {
      server.close()
    }
  })
})

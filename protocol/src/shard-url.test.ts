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

  it('refuses the special-purpose IPv4 ranges: benchmarking, IETF assignments, multicast, reserved and broadcast', () => {
    for (const ip of ['198.18.0.1', '198.19.255.254', '192.0.0.1', '192.0.0.170', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255']) {
      expect(namesPrivateHost(ip), ip).toBe(true)
      expect(shardUrlRefusal(`http://${ip}/a`, false), ip).toMatch(/private or loopback/)
    }
    for (const ip of ['198.17.255.255', '198.20.0.1', '192.0.1.1', '223.255.255.255', '1.1.1.1']) expect(namesPrivateHost(ip), ip).toBe(false)
  })

  it('judges IPv6 forms that carry an IPv4 address by that address: NAT64, 6to4, compatible, mapped, Teredo', () => {
    const privateForms = [
      '64:ff9b::a9fe:a9fe', '64:ff9b::169.254.169.254', '64:ff9b::a00:1', '64:ff9b::7f00:1', // NAT64 of metadata, 10.0.0.1, loopback
      '64:ff9b:1::1', '64:ff9b:1:abcd::808:808', // local-use NAT64: the site maps it anywhere
      '2002:a9fe:a9fe::1', '2002:c0a8:101::', '2002:7f00:1::', // 6to4 of 169.254.169.254, 192.168.1.1, 127.0.0.1
      '::a9fe:a9fe', '::127.0.0.1', '::10.0.0.1', '::', '::1', // IPv4-compatible
      '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:0:a00:1', // mapped and SIIT
      'fec0::1', 'fed0::1', 'feff::1', 'fe80::1%eth0', 'fc00::1', 'fdff::1', 'ff02::1', '::2:3:4:5:6' // site/link-local, ULA, multicast, reserved
    ]
    for (const ip of privateForms) {
      expect(namesPrivateHost(ip), ip).toBe(true)
      expect(namesPrivateHost(`[${ip}]`), ip).toBe(true)
    }
    // URL() normalises what it is given; the hex form it writes is judged the same.
    for (const host of ['[64:ff9b::169.254.169.254]', '[2002:a9fe:a9fe::1]', '[::127.0.0.1]', '[fec0::1]']) {
      expect(shardUrlRefusal(`http://${host}/a`, false), host).toMatch(/private or loopback/)
    }
    // Teredo: the client address is the last 32 bits inverted (here 10.0.0.1, then 8.8.8.8).
    expect(namesPrivateHost('2001:0:4136:e378:8000:63bf:f5ff:fffe')).toBe(true)
    expect(namesPrivateHost('2001:0:4136:e378:8000:63bf:f7f7:f7f7')).toBe(false)
    // The same forms around a public IPv4 address are public.
    for (const ip of ['64:ff9b::808:808', '64:ff9b::8.8.8.8', '2002:808:808::1', '::ffff:8.8.8.8', '2606:4700:4700::1111', '2001:db8:1::1', '2a00:1450:4001::200e']) {
      expect(namesPrivateHost(ip), ip).toBe(false)
    }
  })

  it('refuses a name that resolves to a NAT64 or 6to4 form of a private address', async () => {
    for (const address of ['64:ff9b::a9fe:a9fe', '2002:a00:1::1', 'fec0::1', '198.18.0.1']) {
      const resolve: ResolveAll = (_host, callback) => { callback(null, [{ address, family: address.includes(':') ? 6 : 4 }]) }
      const err = await new Promise<NodeJS.ErrnoException | null>((done) => {
        publicOnlyLookup(resolve)('shards.example.org', { all: true }, (e) => { done(e) })
      })
      expect(err?.code, address).toBe('ERR_PRIVATE_ADDRESS')
    }
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

// Shards fetched by URL (datasets given as a manifest): what a coordinator or agent will dial.
import { lookup as dnsLookup } from 'node:dns'
import type { LookupAddress, LookupOptions } from 'node:dns'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import type { LookupFunction } from 'node:net'
import { ipv4FromGroups, parseIpv6 } from './ipv6-address.ts'

/**
 * Whether a dotted-quad IPv4 address is not on the public internet: this network (0/8), private
 * (10/8, 172.16/12, 192.168/16), carrier-grade NAT (100.64/10), loopback (127/8), link-local
 * (169.254/16, cloud metadata), IETF protocol assignments (192.0.0/24), benchmarking (198.18/15),
 * and multicast, reserved and broadcast (224/3, up to 255.255.255.255).
 */
function privateV4 (ip: string): boolean {
  const [a, b, c] = ip.split('.').map(Number) as [number, number, number]
  return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
    (a === 100 && b >= 64 && b <= 127) || (a === 192 && b === 0 && c === 0) || (a === 198 && (b === 18 || b === 19)) || a >= 224
}

/**
 * Whether an IPv6 address is not on the public internet. Forms that carry an IPv4 address are
 * judged by that address, since a translator or tunnel on the path delivers them to it: mapped
 * (::ffff:0:0/96), compatible (::/96, with :: and ::1), SIIT (::ffff:0:0:0/96), NAT64
 * (64:ff9b::/96), 6to4 (2002::/16) and Teredo clients (2001::/32). Refused outright: the rest of
 * ::/16 (reserved), local-use NAT64 (64:ff9b:1::/48, whatever IPv4 the site maps it to), unique
 * local (fc00::/7), link- and site-local (fe80::/10, fec0::/10) and multicast (ff00::/8).
 */
function privateV6 (literal: string): boolean {
  const g = parseIpv6(literal)
  // isIP said IPv6; a form this parser does not follow is refused rather than guessed at.
  if (g === undefined) return true
  const zero = (from: number, to: number): boolean => g.slice(from, to).every((x) => x === 0)
  if (zero(0, 5) && (g[5] === 0 || g[5] === 0xffff)) return privateV4(ipv4FromGroups(g[6]!, g[7]!))
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return privateV4(ipv4FromGroups(g[6]!, g[7]!))
  if (g[0] === 0) return true
  if (g[0] === 0x64 && g[1] === 0xff9b) {
    if (zero(2, 6)) return privateV4(ipv4FromGroups(g[6]!, g[7]!))
    return true
  }
  if (g[0] === 0x2002) return privateV4(ipv4FromGroups(g[1]!, g[2]!))
  // Teredo keeps the client's IPv4 address in the last 32 bits, inverted.
  if (g[0] === 0x2001 && g[1] === 0) return privateV4(ipv4FromGroups(g[6]! ^ 0xffff, g[7]! ^ 0xffff))
  return (g[0]! & 0xfe00) === 0xfc00 || (g[0]! & 0xff80) === 0xfe80 || (g[0]! & 0xff00) === 0xff00
}

/** Whether a URL's host names this machine or a private network by itself (a literal address or localhost). */
export function namesPrivateHost (hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost')) return true
  const kind = isIP(host)
  if (kind === 4) return privateV4(host)
  if (kind === 6) return privateV6(host)
  return false
}

/**
 * Why a shard URL is refused, or null. Only http(s); and unless `allowPrivate`, not a literal
 * private or loopback address, so an organizer's manifest cannot point donors' machines (or the
 * coordinator) at their own local services. A DNS name that resolves to a private address is
 * refused when it is fetched (`fetchShardBytes`), on the address actually dialled.
 */
export function shardUrlRefusal (url: string, allowPrivate: boolean): string | null {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `"${url.slice(0, 100)}" is not a URL`
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `shard URLs must be http(s), not ${parsed.protocol}`
  if (parsed.username !== '' || parsed.password !== '') return 'shard URLs may not carry credentials'
  if (!allowPrivate && namesPrivateHost(parsed.hostname)) return `${parsed.hostname} is a private or loopback address; shard URLs must be public (a local test allows them with --allow-private-shard-urls)`
  return null
}

/** How a name is resolved: `dns.lookup` with `all: true`, replaceable in tests. */
export type ResolveAll = (hostname: string, callback: (err: Error | null, addresses: LookupAddress[]) => void) => void

const systemResolve: ResolveAll = (hostname, callback) => { dnsLookup(hostname, { all: true }, callback) }

/**
 * A socket lookup that refuses a name resolving to any private or loopback address. It runs for
 * the connection itself, so the address checked is the address dialled: a name cannot be
 * pointed somewhere public for a check and somewhere private for the dial (DNS rebinding).
 */
export function publicOnlyLookup (resolve: ResolveAll = systemResolve): LookupFunction {
  return ((hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    resolve(hostname, (err, addresses) => {
      if (err !== null) { callback(err, ''); return }
      const wanted = addresses.filter((a) => options.family === undefined || options.family === 0 || a.family === options.family)
      const bad = wanted.find((a) => namesPrivateHost(a.address))
      if (bad !== undefined) {
        callback(Object.assign(new Error(`${hostname} resolves to ${bad.address}, a private or loopback address; shard URLs must be public`), { code: 'ERR_PRIVATE_ADDRESS' }), '')
        return
      }
      if (wanted.length === 0) { callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), ''); return }
      if (options.all === true) callback(null, wanted)
      else callback(null, wanted[0]!.address, wanted[0]!.family)
    })
  }) as LookupFunction
}

/**
 * Fetches a shard by URL, refusing bodies over `maxBytes` and any redirect; the caller checks
 * its sha256. Unless `allowPrivate`, a host that is, or resolves to, a private or loopback
 * address is refused at connect time.
 */
export async function fetchShardBytes (url: string, maxBytes: number, options: { signal?: AbortSignal, allowPrivate?: boolean, resolve?: ResolveAll, idleMs?: number } = {}): Promise<Uint8Array> {
  const idleMs = options.idleMs ?? SHARD_URL_IDLE_MS
  const refusal = shardUrlRefusal(url, options.allowPrivate === true)
  if (refusal !== null) throw new Error(refusal)
  const target = new URL(url)
  const get = target.protocol === 'https:' ? httpsRequest : httpRequest
  return await new Promise<Uint8Array>((resolve, reject) => {
    const req = get(target, {
      ...(options.allowPrivate === true ? {} : { lookup: publicOnlyLookup(options.resolve) }),
      ...(options.signal !== undefined ? { signal: options.signal } : {})
    }, (res) => {
      const status = res.statusCode ?? 0
      if (status < 200 || status >= 300) {
        res.resume()
        reject(new Error(status >= 300 && status < 400 ? `${url} redirects (HTTP ${status}); shard URLs must serve the shard itself` : `${url} answered HTTP ${status}`))
        return
      }
      const declared = Number(res.headers['content-length'] ?? NaN)
      if (declared > maxBytes) { res.destroy(); reject(new Error(`${url} is ${declared} bytes, more than the ${maxBytes} a shard may be`)); return }
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.byteLength
        if (size > maxBytes) { res.destroy(); reject(new Error(`${url} is longer than the ${maxBytes} bytes a shard may be`)); return }
        chunks.push(chunk)
      })
      res.on('end', () => { resolve(Buffer.concat(chunks)) })
      res.on('error', reject)
    })
    req.on('error', reject)
    // A server that accepts and then says nothing (before its headers or mid-body) is cut off.
    req.setTimeout(idleMs, () => { req.destroy(new Error(`${url} sent nothing for ${idleMs / 1000} s`)) })
    req.end()
  })
}

/** How long a shard URL's server may send nothing before the fetch gives up. */
export const SHARD_URL_IDLE_MS = 60_000

/** Largest shard anyone fetches by URL (2^27 four-byte tokens). */
export const MAX_URL_SHARD_BYTES = 512 * 1024 * 1024

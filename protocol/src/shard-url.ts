// Shards fetched by URL (datasets given as a manifest): what a coordinator or agent will dial.
import { isIP } from 'node:net'

function privateV4 (ip: string): boolean {
  const [a, b] = ip.split('.').map(Number) as [number, number]
  return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127)
}

/** Whether a URL's host names this machine or a private network by itself (a literal address or localhost). */
export function namesPrivateHost (hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost')) return true
  const kind = isIP(host)
  if (kind === 4) return privateV4(host)
  if (kind === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host)
    if (mapped !== null) return privateV4(mapped[1]!)
    // URL() writes an IPv4-mapped address in hex: ::ffff:7f00:1 is 127.0.0.1.
    const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host)
    if (hex !== null) {
      const hi = parseInt(hex[1]!, 16)
      const lo = parseInt(hex[2]!, 16)
      return privateV4(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`)
    }
    return host === '::1' || host === '::' || /^f[cd]/.test(host) || /^fe[89ab]/.test(host)
  }
  return false
}

/**
 * Why a shard URL is refused, or null. Only http(s); and unless `allowPrivate`, not a literal
 * private or loopback address, so an organizer's manifest cannot point donors' machines (or the
 * coordinator) at their own local services. A DNS name that resolves to a private address is
 * not caught here (see docs/security.md).
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

/** Fetches a shard by URL, refusing bodies over `maxBytes`; the caller checks its sha256. */
export async function fetchShardBytes (url: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array> {
  const res = await fetch(url, { redirect: 'error', ...(signal !== undefined ? { signal } : {}) })
  if (!res.ok || res.body === null) throw new Error(`${url} answered HTTP ${res.status}`)
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (declared > maxBytes) throw new Error(`${url} is ${declared} bytes, more than the ${maxBytes} a shard may be`)
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = res.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) { await reader.cancel(); throw new Error(`${url} is longer than the ${maxBytes} bytes a shard may be`) }
    chunks.push(value)
  }
  return Buffer.concat(chunks)
}

/** Largest shard anyone fetches by URL (2^27 four-byte tokens). */
export const MAX_URL_SHARD_BYTES = 512 * 1024 * 1024

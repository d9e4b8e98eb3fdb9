import { isIPv4 } from 'node:net'
import { ipv4FromGroups, parseIpv6 } from '@barnraise/protocol'

/** The IPv4 address an IPv6 one carries for a translator (mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`), or undefined. */
function carriedIpv4 (groups: number[]): string | undefined {
  const zeros = (from: number, to: number): boolean => groups.slice(from, to).every((g) => g === 0)
  const mapped = zeros(0, 5) && groups[5] === 0xffff
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6)
  return mapped || nat64 ? ipv4FromGroups(groups[6]!, groups[7]!) : undefined
}

/**
 * The key per-address limits count a client under: an IPv4 address as it is, an IPv6 address
 * as its /64, which one host or home is usually given whole, so stepping through its addresses
 * does not make a client many. IPv4 carried in IPv6 (mapped `::ffff:a.b.c.d` in either
 * notation, or NAT64's `64:ff9b::a.b.c.d`) is its IPv4 address: as a /64 every IPv4 client
 * behind a translator would share one key.
 */
export function addressKey (address: string): string {
  const groups = parseIpv6(address)
  if (groups === undefined) return address
  return carriedIpv4(groups) ?? `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`
}

/**
 * The network an address key belongs to: an IPv6 /64's /48, which one customer is often given
 * (256 of its /64s would otherwise each be an address of their own), an IPv4 address itself.
 */
export function networkOf (address: string): string {
  const v6 = /^([0-9a-f]{1,4}):([0-9a-f]{1,4}):([0-9a-f]{1,4}):[0-9a-f]{1,4}::\/64$/i.exec(address)
  return v6 === null ? address : `${v6[1]}:${v6[2]}:${v6[3]}::/48`
}

/**
 * Whether an address (as a socket or proxy gives it, any notation) is this machine's loopback:
 * 127/8, ::1, or 127/8 mapped into IPv6 (a dual-stack socket's view). Not NAT64: a translator
 * delivers those from elsewhere.
 */
export function isLoopbackAddress (address: string): boolean {
  if (isIPv4(address)) return address.startsWith('127.')
  const g = parseIpv6(address)
  if (g === undefined) return false
  const zeros = (from: number, to: number): boolean => g.slice(from, to).every((x) => x === 0)
  if (zeros(0, 7)) return g[7] === 1
  return zeros(0, 5) && g[5] === 0xffff && g[6]! >> 8 === 127
}

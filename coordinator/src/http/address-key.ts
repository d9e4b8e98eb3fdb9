import { isIPv6 } from 'node:net'

/**
 * The key per-address limits count a client under: an IPv4 address as it is, an IPv6 address
 * as its /64, which one host or home is usually given whole, so stepping through its addresses
 * does not make a client many. IPv4 carried in IPv6 (mapped `::ffff:a.b.c.d` in either
 * notation, or NAT64's `64:ff9b::a.b.c.d`) is its IPv4 address: as a /64 every IPv4 client
 * behind a translator would share one key.
 */
export function addressKey (address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  if (mapped !== null) return mapped[1]!
  const bare = address.split('%')[0]!
  if (!isIPv6(bare)) return address
  const [head = '', tail] = bare.split('::') as [string, string | undefined]
  const groupsOf = (part: string): string[] => part === '' ? [] : part.split(':').flatMap((g) => {
    if (!g.includes('.')) return [g]
    // An embedded IPv4 tail is the last two groups.
    const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number]
    return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)]
  })
  const front = groupsOf(head)
  const back = tail === undefined ? [] : groupsOf(tail)
  const groups = [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back].map((g) => parseInt(g, 16))
  const zeros = (from: number, to: number): boolean => groups.slice(from, to).every((g) => g === 0)
  const mapped4 = zeros(0, 5) && groups[5] === 0xffff
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6)
  if (mapped4 || nat64) return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.')
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`
}

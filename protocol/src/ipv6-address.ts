// IPv6 addresses in text, as a socket, a proxy's X-Forwarded-For or a URL's host writes them:
// one strict parser, shared by the coordinator's per-address limits and the shard-URL checks,
// so both read every notation of an address the same way.

/** Node's zone ids (`fe80::1%eth0`): letters, digits and `-.:`. */
const ZONE = /%[0-9a-z.:-]+$/i
/** A dotted IPv4 tail, each octet 0-255 written without leading zeros (as inet_pton reads it). */
const V4_TAIL = /^(.*:)((?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)){3})$/
const GROUP = /^[0-9a-f]{1,4}$/i

/**
 * The eight 16-bit groups of an IPv6 address in text (any case, leading zeros, `::`, a dotted
 * IPv4 tail, a zone id, which is dropped), or undefined when the text is not one. It accepts
 * what Node's `net.isIPv6` accepts.
 */
export function parseIpv6 (text: string): number[] | undefined {
  // The longest address is 45 characters; a zone id is short. Anything longer is not one.
  if (text.length > 128) return undefined
  let host = text.replace(ZONE, '')
  if (host.includes('%')) return undefined
  const dotted = V4_TAIL.exec(host)
  if (dotted !== null) {
    const [a, b, c, d] = dotted[2]!.split('.').map(Number) as [number, number, number, number]
    host = `${dotted[1]!}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const halves = host.split('::')
  if (halves.length > 2) return undefined
  const groupsOf = (part: string): number[] | undefined => {
    if (part === '') return []
    const texts = part.split(':')
    return texts.every((g) => GROUP.test(g)) ? texts.map((g) => parseInt(g, 16)) : undefined
  }
  const head = groupsOf(halves[0]!)
  if (head === undefined) return undefined
  if (halves.length === 1) return head.length === 8 ? head : undefined
  const tail = groupsOf(halves[1]!)
  // `::` stands for at least one group of zeros.
  if (tail === undefined || head.length + tail.length > 7) return undefined
  return [...head, ...Array<number>(8 - head.length - tail.length).fill(0), ...tail]
}

/** The dotted IPv4 address two 16-bit groups carry (the last two of a mapped or NAT64 address). */
export function ipv4FromGroups (high: number, low: number): string {
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`
}

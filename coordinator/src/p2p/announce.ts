import { multiaddr } from '@multiformats/multiaddr'

/**
 * Checks an `--announce` address: where agents reach this coordinator when that is not an
 * address it listens on (a cloud VM behind NAT, a port forward, a DNS name). It must be a host
 * (ip4, ip6 or a DNS name) and a TCP port, nothing more: the host adds its own peer id. Returns
 * the address, or a message saying what is wrong with it.
 */
export function checkAnnounceAddress (text: string): { ok: true, address: string } | { ok: false, message: string } {
  const example = 'e.g. /ip4/203.0.113.5/tcp/4001 or /dns4/coordinator.example.org/tcp/4001'
  let parts: Array<{ name: string, value?: string }>
  try {
    parts = multiaddr(text).getComponents()
  } catch (err) {
    return { ok: false, message: `--announce ${JSON.stringify(text)} is not a multiaddr (${(err as Error).message}); ${example}` }
  }
  const [host, port, ...rest] = parts
  if (host === undefined || !['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(host.name) || port?.name !== 'tcp' || rest.length > 0) {
    return { ok: false, message: `--announce ${JSON.stringify(text)} must be a host and a TCP port and nothing after them (the peer id is added), ${example}` }
  }
  if (Number(port.value) < 1) return { ok: false, message: `--announce ${JSON.stringify(text)} names port 0; agents need the port they dial` }
  return { ok: true, address: text }
}

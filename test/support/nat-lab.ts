// Two private networks behind their own NAT routers and one "internet", made of Linux network
// namespaces for test/nat-relay.test.ts:
//
//   a1 (10.0.1.2) ── r1 (10.0.1.1 | 203.0.113.11, masquerade) ──┐
//                                                                ├── pub: bridge 203.0.113.1
//   a2 (10.0.2.2) ── r2 (10.0.2.1 | 203.0.113.12, masquerade) ──┘
//
// Nothing routes into 10.0.x from outside, so an agent in a1 or a2 can only dial out, as a
// donor behind a home router. Needs root, `ip` (iproute2) and `iptables`; everything lives in
// namespaces the lab makes and removes.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface NatLab {
  /** Namespace names: the internet (the coordinator's), and the two agents'. */
  pub: string
  agents: [string, string]
  /** The coordinator's address on the internet bridge. */
  publicIp: string
  /** A command prefix that runs a program in namespace `ns`. */
  inside: (ns: string) => string[]
  close: () => Promise<void>
}

async function ip (...args: string[]): Promise<void> {
  await run('ip', args)
}

/** Builds the lab; on failure removes what it made. */
export async function createNatLab (): Promise<NatLab> {
  const id = randomBytes(2).toString('hex')
  const ns = { pub: `brn${id}p`, r1: `brn${id}r1`, r2: `brn${id}r2`, a1: `brn${id}a1`, a2: `brn${id}a2` }
  const made: string[] = []
  const close = async (): Promise<void> => {
    for (const n of made.reverse()) await run('ip', ['netns', 'del', n]).catch(() => {})
  }
  try {
    for (const n of Object.values(ns)) {
      await ip('netns', 'add', n)
      made.push(n)
      await ip('-n', n, 'link', 'set', 'lo', 'up')
    }
    await ip('-n', ns.pub, 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', ns.pub, 'addr', 'add', '203.0.113.1/24', 'dev', 'br0')
    await ip('-n', ns.pub, 'link', 'set', 'br0', 'up')
    for (const i of [1, 2] as const) {
      const router = i === 1 ? ns.r1 : ns.r2
      const agent = i === 1 ? ns.a1 : ns.a2
      const wan = `w${i}${id}`
      const lan = `l${i}${id}`
      // The router's internet side, its other end on the bridge.
      await ip('link', 'add', wan, 'netns', router, 'type', 'veth', 'peer', 'name', `p${i}${id}`, 'netns', ns.pub)
      await ip('-n', ns.pub, 'link', 'set', `p${i}${id}`, 'master', 'br0', 'up')
      await ip('-n', router, 'addr', 'add', `203.0.113.1${i}/24`, 'dev', wan)
      await ip('-n', router, 'link', 'set', wan, 'up')
      // The private side, to the agent's namespace.
      await ip('link', 'add', lan, 'netns', router, 'type', 'veth', 'peer', 'name', `e${i}${id}`, 'netns', agent)
      await ip('-n', router, 'addr', 'add', `10.0.${i}.1/24`, 'dev', lan)
      await ip('-n', router, 'link', 'set', lan, 'up')
      await ip('-n', agent, 'addr', 'add', `10.0.${i}.2/24`, 'dev', `e${i}${id}`)
      await ip('-n', agent, 'link', 'set', `e${i}${id}`, 'up')
      await ip('-n', agent, 'route', 'add', 'default', 'via', `10.0.${i}.1`)
      await run('ip', ['netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
      await run('ip', ['netns', 'exec', router, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', wan, '-j', 'MASQUERADE'])
    }
  } catch (err) {
    await close()
    throw new Error(`could not build the NAT lab (this test needs root, iproute2 and iptables; scripts/setup.sh installs iptables): ${(err as Error).message}`)
  }
  return { pub: ns.pub, agents: [ns.a1, ns.a2], publicIp: '203.0.113.1', inside: (n) => ['ip', 'netns', 'exec', n], close }
}

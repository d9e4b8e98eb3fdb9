import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, spawnCli } from './processes.ts'
import type { Spawned } from './processes.ts'

const COORDINATOR = 'coordinator/src/cli.ts'
const AGENT = 'node-agent/src/cli.ts'

/** A fresh temporary directory for one process's state. */
export async function tempDir (prefix: string): Promise<string> {
  return await mkdtemp(join(tmpdir(), `barnraise-${prefix}-`))
}

export interface RunningCoordinator {
  url: string
  multiaddr: string
  dataDir: string
  process: Spawned
  /** the one-time code for the first admin's web sign-up; null when the install has an admin */
  setupCode: string | null
  createToken: (org: string, opts?: { uses?: number }) => Promise<string>
  stop: () => Promise<void>
}

/** Starts a real coordinator process on loopback (embedded PGlite unless env sets DATABASE_URL). */
export async function startCoordinator (options: { dataDir?: string, env?: Record<string, string>, args?: string[] } = {}): Promise<RunningCoordinator> {
  const dataDir = options.dataDir ?? await tempDir('coordinator')
  const env = { DATABASE_URL: '', ...options.env }
  const proc = spawnCli(COORDINATOR, ['serve', '--data-dir', dataDir, '--http-port', '0', '--p2p-port', '0', ...(options.args ?? [])], env)
  try {
    const [, multiaddr] = await proc.waitForLine(/^coordinator multiaddr: (\S+)/, 60_000)
    const [, url] = await proc.waitForLine(/^coordinator dashboard: (\S+)/, 60_000)
    // Printed before the dashboard line, so it is in the output by now if there is one.
    const setupCode = /^coordinator setup code: (\S+)/m.exec(proc.output())?.[1] ?? null
    return {
      url: url!,
      multiaddr: multiaddr!,
      dataDir,
      process: proc,
      setupCode,
      createToken: async (org, opts = {}) => {
        const result = await runCli(COORDINATOR, ['token', 'create', '--org', org, '--uses', String(opts.uses ?? 1), '--data-dir', dataDir, '--json'], env)
        if (result.code !== 0) throw new Error(`token create failed: ${result.output}`)
        return (JSON.parse(result.stdout) as { token: string }).token
      },
      stop: async () => { await proc.stop() }
    }
  } catch (err) {
    await proc.stop()
    throw err
  }
}

export interface RunningAgent {
  peerId: string
  nodeId: string
  dataDir: string
  process: Spawned
  output: () => string
  stop: () => Promise<void>
}

/** Starts a real agent process and waits until it has enrolled (or re-joined). */
export async function startAgent (options: { coordinator: string, token?: string, dataDir?: string, name?: string, args?: string[] }): Promise<RunningAgent> {
  const dataDir = options.dataDir ?? await tempDir('agent')
  // One thread each: several agents share this machine's cores in the tests. The TypeScript
  // executor unless a test picks one: `auto` would spend seconds measuring at every start.
  const extra = options.args ?? []
  const executor = extra.includes('--executor') ? [] : ['--executor', 'typescript']
  const args = ['join', '--coordinator', options.coordinator, '--data-dir', dataDir, '--heartbeat-interval', '1', '--threads', '1', ...executor, ...extra]
  if (options.token !== undefined) args.push('--token', options.token)
  if (options.name !== undefined) args.push('--name', options.name)
  const proc = spawnCli(AGENT, args)
  try {
    const [, nodeId, peerId] = await proc.waitForLine(/^agent: (?:enrolled|re-joined) as node (\S+) of .* \(peer (\S+)\)/, 60_000)
    return { peerId: peerId!, nodeId: nodeId!, dataDir, process: proc, output: proc.output, stop: async () => { await proc.stop() } }
  } catch (err) {
    await proc.stop()
    throw err
  }
}

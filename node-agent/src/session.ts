import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { HardwareProfile } from '@barnraise/protocol'
import { CoordinatorClient, RefusedError, isRetryable } from './coordinator-client.ts'
import { writeEnrollment } from './enrollment-file.ts'
import type { Enrollment } from './enrollment-file.ts'
import { backoffDelay, sleep } from './backoff.ts'
import { AGENT_VERSION } from './version.ts'

export interface SessionOptions {
  libp2p: Libp2p
  coordinator: Multiaddr
  dataDir: string
  hardware: HardwareProfile
  token?: string
  name?: string
  heartbeatIntervalMs: number
  signal: AbortSignal
  /** Human-facing status lines. */
  say: (line: string) => void
}

/**
 * Keeps a node enrolled and connected: enroll (or re-join), heartbeat, and after any network
 * failure reconnect with backoff. Returns when the signal aborts; throws RefusedError when
 * the coordinator refuses the node, which no retry can fix.
 */
export async function runSession (options: SessionOptions): Promise<void> {
  const client = new CoordinatorClient(options.libp2p, options.coordinator)
  const peerId = options.libp2p.peerId.toString()
  let attempt = 0
  let enrollment: Enrollment | undefined
  while (!options.signal.aborted) {
    try {
      const reply = await client.enroll({
        type: 'enroll',
        agentVersion: AGENT_VERSION,
        hardware: options.hardware,
        ...(options.token !== undefined ? { token: options.token } : {}),
        ...(options.name !== undefined ? { name: options.name } : {})
      })
      enrollment = { coordinator: options.coordinator.toString(), nodeId: reply.nodeId, organizationId: reply.organizationId, organizationName: reply.organizationName, peerId }
      await writeEnrollment(options.dataDir, enrollment)
      options.say(`agent: ${reply.rejoined ? 're-joined' : 'enrolled'} as node ${reply.nodeId} of ${reply.organizationName} (peer ${peerId})`)
      attempt = 0
      while (!options.signal.aborted) {
        await client.heartbeat({ type: 'heartbeat', status: 'idle' })
        if (!await sleep(options.heartbeatIntervalMs, options.signal)) break
      }
    } catch (err) {
      if (options.signal.aborted) break
      // A token is spent once; a node the coordinator already knows re-joins by its key.
      if (err instanceof RefusedError && err.code === 'ERR_INVALID_TOKEN' && enrollment !== undefined) {
        options.token = undefined
        continue
      }
      if (!isRetryable(err)) throw err
      const delay = backoffDelay(attempt++)
      options.say(`agent: coordinator unreachable (${(err as Error).message}); retrying in ${(delay / 1000).toFixed(1)} s`)
      await sleep(delay, options.signal)
    }
  }
}

export { RefusedError }

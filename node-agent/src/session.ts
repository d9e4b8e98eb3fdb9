import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { ProtocolError, toPlainText } from '@barnraise/protocol'
import type { HardwareProfile } from '@barnraise/protocol'
import { CoordinatorClient, RefusedError, isRetryable } from './coordinator-client.ts'
import { writeEnrollment } from './enrollment-file.ts'
import type { Enrollment } from './enrollment-file.ts'
import { backoffDelay, sleep } from './backoff.ts'
import { AGENT_VERSION } from './version.ts'
import { BlobCache } from './blob-cache.ts'
import type { PeerExchange } from './peers/peer-exchange.ts'
import type { WorkMetrics } from './metrics/agent-metrics.ts'
import { runWorkLoop, workState } from './work-loop.ts'
import type { AgentStatus, WorkState } from './work-loop.ts'
import type { Executor } from './executors/executor.ts'
import { ExecutorError } from './executors/executor-error.ts'

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
  /** Progress and waiting lines as well as one line per round. */
  verbose?: boolean
  /** When set, the node trains: it asks for work units and reports them (and scores others' within `maxMemoryBytes` of host memory, --max-memory). */
  work?: { executor: Executor, key: PrivateKey, maxMemoryBytes?: number }
  /** Whether shards a run serves by URL may be fetched from loopback or private addresses. */
  allowPrivateShardUrls?: boolean
  /** Never fetch shards by URL (runs whose datasets are URL manifests get nothing from this node). */
  noShardUrls?: boolean
  /** Told what the work loop did (--metrics-port). */
  metrics?: WorkMetrics
  /** Fetch blobs from the run's other agents first (peer exchange); the coordinator only otherwise. */
  peers?: PeerExchange
}

/** How long without an unreadable reply before their backoff starts over. */
const MALFORMED_STREAK_MS = 10 * 60_000

/**
 * A `say` that writes only plain text. Status lines quote the coordinator (run names, wait
 * reasons, its organization's name, refusal codes and messages), and a hostile one could
 * otherwise reach the volunteer's terminal with escape sequences: an OSC 52 clipboard write, a
 * screen clear, a fake window title. ESC, BEL and every other C0 and C1 control, bidirectional
 * overrides and unpaired surrogates become spaces; line feeds and tabs stay.
 */
export function plainSay (say: (line: string) => void): (line: string) => void {
  return (line) => { say(toPlainText(line, 'multi-line')) }
}

/**
 * Keeps a node enrolled and connected: enroll (or re-join), heartbeat, and after any network
 * failure reconnect with backoff. Returns when the signal aborts; throws RefusedError when
 * the coordinator refuses the node, which no retry can fix.
 */
export async function runSession (sessionOptions: SessionOptions): Promise<void> {
  // Everything said from here on (the work loop's lines included) may quote the coordinator.
  const options: SessionOptions = { ...sessionOptions, say: plainSay(sessionOptions.say) }
  const client = new CoordinatorClient(options.libp2p, options.coordinator, options.work !== undefined ? { executor: options.work.executor.kind } : {})
  const peerId = options.libp2p.peerId.toString()
  let attempt = 0
  let malformedStreak = 0
  let lastMalformedAt = 0
  let enrollment: Enrollment | undefined
  // Which blobs the last unit held, across reconnects: the cache drops the rest as a unit starts.
  const state = workState()
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
      await connected(options, client, state)
    } catch (err) {
      if (options.signal.aborted) break
      // A token is spent once; a node the coordinator already knows re-joins by its key.
      if (err instanceof RefusedError && err.code === 'ERR_INVALID_TOKEN' && enrollment !== undefined) {
        options.token = undefined
        continue
      }
      if (!isRetryable(err)) throw err
      const malformed = err instanceof ProtocolError && err.code === 'ERR_MALFORMED_MESSAGE'
      // Enrolling resets `attempt`, but a coordinator that keeps sending replies this agent
      // cannot read answers enroll fine: those back off on their own count, which a quiet spell
      // starts over.
      if (malformed) {
        if (Date.now() - lastMalformedAt > MALFORMED_STREAK_MS) malformedStreak = 0
        lastMalformedAt = Date.now()
      }
      const delay = backoffDelay(malformed ? Math.max(attempt++, malformedStreak++) : attempt++)
      // This machine's own trainer failing is not the network's fault, and a reply this agent
      // cannot read is not an outage: say which it was.
      const what = err instanceof ExecutorError
        ? `the executor failed (${err.code}: ${err.message})`
        : malformed
          ? `the coordinator sent a reply this agent cannot read (${err.message}); if the coordinator was upgraded, upgrade this agent too`
          : `coordinator unreachable (${(err as Error).message})`
      options.say(`agent: ${what}; retrying in ${(delay / 1000).toFixed(1)} s`)
      await sleep(delay, options.signal)
    }
  }
}

/** Heartbeats and, for a training node, the work loop, until either fails or the signal aborts. */
async function connected (options: SessionOptions, client: CoordinatorClient, state: WorkState): Promise<void> {
  const inner = new AbortController()
  const onAbort = (): void => { inner.abort() }
  options.signal.addEventListener('abort', onAbort, { once: true })
  let status: AgentStatus = 'idle'
  // A missed heartbeat must not throw away a half-trained unit: keep training, keep trying.
  // Only a refusal (revoked, forgotten) ends the session; the work loop reconnects on its own
  // errors. A node that does not train has nothing else to notice an outage, so it reconnects.
  const heartbeats = (async () => {
    let misses = 0
    while (!inner.signal.aborted) {
      try {
        const { revoked } = await client.heartbeat({ type: 'heartbeat', status })
        // Within a heartbeat of a revocation, not when the remembered yes runs out (a minute).
        const fresh = revoked.length > 0 ? options.peers?.revoke(revoked) ?? [] : []
        if (fresh.length > 0) options.say(`agent: the coordinator revoked ${fresh.length === 1 ? 'peer' : `${fresh.length} peers:`} ${fresh.slice(0, 3).join(', ')}${fresh.length > 3 ? ' …' : ''}; this node serves ${fresh.length === 1 ? 'it' : 'them'} no more blocks`)
        if (misses > 0) options.say('agent: coordinator reachable again')
        misses = 0
      } catch (err) {
        if (!isRetryable(err) || options.work === undefined) throw err
        if (misses++ === 0) options.say(`agent: heartbeat failed (${(err as Error).message}); still training, retrying`)
      }
      if (!await sleep(misses === 0 ? options.heartbeatIntervalMs : backoffDelay(misses, options.heartbeatIntervalMs * 3), inner.signal)) return
    }
  })()
  const tasks = [heartbeats]
  if (options.work !== undefined) {
    tasks.push(runWorkLoop({
      client,
      ...(options.metrics !== undefined ? { metrics: options.metrics } : {}),
      cache: new BlobCache(options.dataDir, options.libp2p, options.coordinator, {
        allowPrivateUrls: options.allowPrivateShardUrls === true,
        refuseUrls: options.noShardUrls === true,
        ...(options.peers !== undefined ? { peers: options.peers, log: (message: string, fields: Record<string, unknown>) => { if (options.verbose === true) options.say(`agent: ${message} ${JSON.stringify(fields, (_k, v: unknown) => v instanceof Error ? v.message : v)}`) } } : {})
      }),
      executor: options.work.executor,
      key: options.work.key,
      maxMemoryBytes: options.work.maxMemoryBytes,
      state,
      peerId: options.libp2p.peerId.toString(),
      dataDir: options.dataDir,
      signal: inner.signal,
      say: options.say,
      setStatus: (s) => { status = s },
      verbose: options.verbose === true
    }))
  }
  try {
    await Promise.race(tasks)
  } finally {
    inner.abort()
    options.signal.removeEventListener('abort', onAbort)
    await Promise.allSettled(tasks)
  }
}

export { RefusedError }

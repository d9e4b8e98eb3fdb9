import { parseArgs } from 'node:util'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { DataDirLockedError, loadOrCreatePeerKey, lockDataDir, onStopSignal } from '@barnraise/protocol'
import type { DataDirLock } from '@barnraise/protocol'
import { createAgentHost } from '../host.ts'
import { PeerExchange } from '../peers/peer-exchange.ts'
import type { Multiaddr } from '@multiformats/multiaddr'
import { probeHardware } from '../hardware.ts'
import { parseCoordinatorAddress } from '../coordinator-client.ts'
import { readEnrollment } from '../enrollment-file.ts'
import { readTokenFile } from './token-file.ts'
import { DataDirError, PEER_KEY_FILE, resolveDataDir, secureDataDir } from '../data-dir.ts'
import { RefusedError, plainSay, runSession } from '../session.ts'
import { AgentMetrics } from '../metrics/agent-metrics.ts'
import type { Server } from 'node:http'
import type { Executor } from '../executors/executor.ts'
import { ExecutorError } from '../executors/executor-error.ts'
import { createExecutor, formatOffers } from '../executors/executor-choice.ts'
import { executorOptions, memoryFlagsFor, parseExecutorFlags } from '../executors/executor-flags.ts'

/** The slowest heartbeat that keeps a node live for the coordinator (30 s, coordinator/src/p2p/presence.ts), with room for one late beat. */
const MAX_HEARTBEAT_SECONDS = 20
const MIN_HEARTBEAT_SECONDS = 1

/**
 * `barnraise-agent join --coordinator MULTIADDR --token TOKEN` (or `--token-file PATH`): enroll
 * this machine and stay connected. A node that enrolled before may omit both; it re-joins with
 * its saved identity.
 */
export async function runJoinCommand (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      coordinator: { type: 'string' },
      verbose: { type: 'boolean', short: 'v', default: false },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      name: { type: 'string' },
      'data-dir': { type: 'string' },
      'heartbeat-interval': { type: 'string', default: '10' },
      'no-train': { type: 'boolean', default: false },
      'allow-private-shard-urls': { type: 'boolean', default: false },
      'no-shard-urls': { type: 'boolean', default: false },
      'metrics-port': { type: 'string' },
      'peer-listen': { type: 'string' },
      'no-peer-exchange': { type: 'boolean', default: false },
      'metrics-host': { type: 'string', default: '127.0.0.1' },
      threads: { type: 'string', default: String(availableParallelism()) },
      ...executorOptions
    }
  })
  // Lines quote the coordinator (run names, reasons, refusals): plain text only, never its escape sequences.
  const say = plainSay((line: string): void => { process.stdout.write(line + '\n') })
  const warn = plainSay((line: string): void => { process.stderr.write(line + '\n') })
  const dataDir = resolveDataDir(values['data-dir'])
  const saved = await readEnrollment(dataDir)
  const address = values.coordinator ?? saved?.coordinator
  if (address === undefined) {
    process.stderr.write('barnraise-agent join: --coordinator <multiaddr> is required (the coordinator prints it at start)\n')
    return 2
  }
  if (values.token !== undefined && values['token-file'] !== undefined) {
    process.stderr.write('barnraise-agent join: give the token one way: --token TOKEN or --token-file PATH, not both (--token-file keeps it out of the process list and your shell history)\n')
    return 2
  }
  let token = values.token
  if (values['token-file'] !== undefined) {
    const read = await readTokenFile(values['token-file'])
    if (!read.ok) {
      process.stderr.write(`barnraise-agent join: ${read.message}\n`)
      return 2
    }
    if (read.warning !== undefined) warn(`barnraise-agent join: warning: ${read.warning}`)
    token = read.token
  }
  if (token === undefined && saved === undefined) {
    process.stderr.write('barnraise-agent join: --token <token> is required for the first join (or --token-file <path>, a file holding it); ask your lab admin for one\n')
    return 2
  }
  let heartbeatSeconds = Number(values['heartbeat-interval'])
  // Below a second the agent heartbeats back to back and runs into the coordinator's per-peer stream limit.
  if (!(heartbeatSeconds >= MIN_HEARTBEAT_SECONDS && heartbeatSeconds <= 3600)) {
    process.stderr.write(`barnraise-agent join: --heartbeat-interval must be seconds from ${MIN_HEARTBEAT_SECONDS} to 3600 (default 10)\n`)
    return 2
  }
  // The coordinator hands units only to nodes it heard from in the last 30 s (Presence.isLive):
  // a slower heartbeat would cost the node its units, so it is clamped rather than refused (a
  // service file written for an older agent keeps working).
  if (heartbeatSeconds > MAX_HEARTBEAT_SECONDS) {
    process.stderr.write(`barnraise-agent join: --heartbeat-interval ${heartbeatSeconds} is over ${MAX_HEARTBEAT_SECONDS} s; using ${MAX_HEARTBEAT_SECONDS} (the coordinator hands work only to nodes it heard from in the last 30 s)\n`)
    heartbeatSeconds = MAX_HEARTBEAT_SECONDS
  }
  const threads = Number(values.threads)
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    process.stderr.write('barnraise-agent join: --threads must be a whole number from 1 to 256\n')
    return 2
  }
  const metricsPort = values['metrics-port'] === undefined ? undefined : Number(values['metrics-port'])
  if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)) {
    process.stderr.write('barnraise-agent join: --metrics-port must be a port number (0 picks a free one)\n')
    return 2
  }
  // libp2p skips a listen address no transport takes, so a typo would pass silently.
  if (values['peer-listen'] !== undefined && !/^\/(?:ip4|ip6)\/[^/]+\/tcp\/\d{1,5}$/.test(values['peer-listen'])) {
    process.stderr.write('barnraise-agent join: --peer-listen must be a TCP address such as /ip4/0.0.0.0/tcp/4002 (tcp/0 picks a free port)\n')
    return 2
  }
  // The node's enrollment, optimizer state and blobs are its owner's alone.
  try {
    const secured = secureDataDir(dataDir)
    if (secured.warning !== undefined) warn(`barnraise-agent join: warning: ${secured.warning}`)
  } catch (err) {
    process.stderr.write(`barnraise-agent join: ${(err as Error).message}${err instanceof DataDirError ? ` (${err.code})` : ''}\n`)
    return 2
  }
  // Two agents on one data directory would share a key, a cache and optimizer state.
  let lock: DataDirLock
  try {
    lock = lockDataDir(dataDir, 'an agent (agent join)')
  } catch (err) {
    if (!(err instanceof DataDirLockedError)) throw err
    process.stderr.write(`barnraise-agent join: an agent is already running with ${dataDir} (pid ${err.owner.pid}); stop it first, or give this one its own --data-dir\n`)
    return 2
  }
  const flags = parseExecutorFlags(values, threads, 'auto')
  if (!flags.ok) {
    process.stderr.write(`barnraise-agent join: ${flags.message}\n`)
    lock.release()
    return 2
  }
  let executor: Executor | undefined
  if (!values['no-train']) {
    try {
      const chosen = await createExecutor(flags.choice, { ...flags.settings, log: (line) => { process.stderr.write(line + '\n') } })
      executor = chosen.executor
      if (chosen.offers !== undefined) say(formatOffers(chosen.offers).split('\n').map((l) => `agent: ${l}`).join('\n'))
      say(`agent: executor ${executor.kind}: ${executor.name}`)
    } catch (err) {
      if (!(err instanceof ExecutorError)) throw err
      process.stderr.write(`barnraise-agent join: cannot use --executor ${flags.choice} (${err.code}): ${err.message}\n`)
      return 4
    }
    // Only now is it known whether auto, or torch on --device auto, landed on a GPU.
    const memory = memoryFlagsFor(executor.kind, executor.name, flags.settings)
    if (!memory.ok) {
      process.stderr.write(`barnraise-agent join: ${memory.message}\n`)
      await executor.close?.()
      lock.release()
      return 2
    }
    if (memory.note !== undefined) say(memory.note)
  }
  const coordinator = parseCoordinatorAddress(address)
  const { key, created } = await loadOrCreatePeerKey(join(dataDir, PEER_KEY_FILE))
  const hardware = await probeHardware()
  const metrics = metricsPort === undefined ? undefined : new AgentMetrics(hardware)
  // A node that does not train fetches nothing, so it has nothing to exchange either.
  const exchanging = !values['no-peer-exchange'] && executor !== undefined
  const peerListen = exchanging ? [values['peer-listen'] ?? defaultPeerListen(coordinator)] : []
  let libp2p: Awaited<ReturnType<typeof createAgentHost>>
  try {
    libp2p = await createAgentHost(key, metrics?.libp2p(), { listen: peerListen, relayed: peerListen.length > 0, coordinator })
  } catch (err) {
    process.stderr.write(`barnraise-agent join: cannot listen on ${peerListen.join(', ')} for peer exchange (${(err as Error).message}); give --peer-listen another address, or --no-peer-exchange\n`)
    await executor?.close?.()
    lock.release()
    return 2
  }
  const peers = !exchanging
    ? undefined
    : await PeerExchange.start(libp2p, coordinator, {
      log: (message, fields) => { if (values.verbose) warn(`agent: ${message} ${JSON.stringify(fields, (_k, v: unknown) => v instanceof Error ? v.message : v)}`) },
      ...(metrics !== undefined ? { onBytes: (source: 'peers' | 'coordinator', bytes: number) => { metrics.blobBytes(source, bytes) } } : {})
    })
  let metricsServer: Server | undefined
  if (metrics !== undefined) {
    const served = await metrics.serve(values['metrics-host'], metricsPort!)
    metricsServer = served.server
    say(`agent: metrics at ${served.url}`)
  }
  say(`agent: peer id ${libp2p.peerId.toString()} (${created ? 'new identity' : 'existing identity'} in ${dataDir})`)
  const controller = new AbortController()
  const stop = (): void => {
    if (controller.signal.aborted) return
    say('agent: stopping')
    controller.abort()
  }
  const removeStopSignal = onStopSignal(stop)
  try {
    await runSession({
      libp2p,
      coordinator,
      dataDir,
      allowPrivateShardUrls: values['allow-private-shard-urls'],
      noShardUrls: values['no-shard-urls'],
      hardware,
      ...(metrics !== undefined ? { metrics } : {}),
      ...(peers !== undefined ? { peers } : {}),
      ...(token !== undefined ? { token } : {}),
      ...(values.name !== undefined ? { name: values.name } : {}),
      heartbeatIntervalMs: heartbeatSeconds * 1000,
      ...(executor === undefined ? {} : { work: { executor, key, maxMemoryBytes: flags.settings.hostMemoryLimitBytes } }),
      signal: controller.signal,
      verbose: values.verbose,
      say
    })
    return 0
  } catch (err) {
    if (err instanceof RefusedError) {
      warn(err.code === 'ERR_WRONG_PEER' ? `barnraise-agent: ${err.message}` : `barnraise-agent: enrollment refused (${err.code}): ${err.message}`)
      return 3
    }
    throw err
  } finally {
    removeStopSignal()
    await executor?.close?.()
    metricsServer?.close()
    await peers?.stop()
    await libp2p.stop()
    lock.release()
  }
}

/**
 * Where peers reach this agent unless --peer-listen says otherwise: loopback when the
 * coordinator is on this machine (a local demo or test), every interface otherwise.
 */
function defaultPeerListen (coordinator: Multiaddr): string {
  const host = /^\/ip[46]\/([^/]+)/.exec(coordinator.toString())?.[1]
  if (host === '127.0.0.1' || host === 'localhost') return '/ip4/127.0.0.1/tcp/0'
  if (host === '::1') return '/ip6/::1/tcp/0'
  return '/ip4/0.0.0.0/tcp/0'
}

import { chmodSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { mkdir, rm } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { Libp2p } from '@libp2p/interface'
import { loadOrCreatePeerKey, lockDataDir } from '@barnraise/protocol'
import { openDatabase } from './db/open-database.ts'
import type { OpenedDatabase } from './db/open-database.ts'
import { createCoordinatorHost } from './p2p/host.ts'
import { Presence } from './p2p/presence.ts'
import { RecentRevocations } from './nodes/recent-revocations.ts'
import { CoordinatorMetrics } from './metrics/coordinator-metrics.ts'
import { NodeScoring } from './rounds/node-scoring.ts'
import { resolvePeerLimits } from './p2p/peer-limits.ts'
import type { PeerLimits } from './p2p/peer-limits.ts'
import { isEnrolledPeer, isRevokedPeer } from './p2p/peer-access.ts'
import { StreamRate } from './p2p/stream-rate.ts'
import { EnrollService } from './p2p/enroll-service.ts'
import { HeartbeatService } from './p2p/heartbeat-service.ts'
import { startHttpServer } from './http/server.ts'
import { startAdminSocket } from './admin/admin-socket.ts'
import { adminOperations } from './admin/admin-operations.ts'
import { DiskBlobStore } from './blobs/blob-store.ts'
import { BlobPins } from './blobs/blob-pins.ts'
import { DatasetLibrary } from './datasets/dataset-library.ts'
import { settleAwaitingRuns } from './runs/awaiting-data.ts'
import type { BlobStore } from './blobs/blob-store.ts'
import { BlobService } from './p2p/blob-service.ts'
import { SwarmService } from './p2p/swarm-service.ts'
import { BlockDigests } from './blobs/block-digests.ts'
import { WorkService } from './p2p/work-service.ts'
import { ReportService } from './p2p/report-service.ts'
import type { ReportUploadLimits } from './p2p/report-service.ts'
import { RoundEngine } from './rounds/round-engine.ts'
import { RunCache } from './rounds/run-cache.ts'
import { BackgroundEvaluation } from './checkpoints/background-evaluation.ts'
import type { CheckpointEvaluator } from './checkpoints/background-evaluation.ts'
import { chooseEvaluator } from './checkpoints/torch-evaluation.ts'
import type { EvaluatorMode } from './checkpoints/torch-evaluation.ts'
import { RunLocks } from './rounds/run-lock.ts'
import { ReportIntake } from './rounds/report-intake.ts'
import { createLogger } from './log.ts'
import { clearRunningInstall, writeRunningInstall } from './install/install-dir.ts'
import type { ListenerLimits } from './events/change-feed.ts'
import { ChangeFeed } from './events/change-feed.ts'
import { startLedgerHeadSigner } from './ledger/ledger-heads.ts'
import type { Logger } from './log.ts'
import { SetupCode } from './accounts/setup-code.ts'
import { SignInThrottle } from './accounts/sign-in-throttle.ts'
import { apiRates } from './limits/api-rates.ts'
import type { ApiRateLimits } from './limits/api-rates.ts'
import { WindowLimiter } from './limits/window-limiter.ts'
import { FolderCache } from './checkpoints/checkpoint-folder.ts'
import { DEFAULT_INSTALL_LIMITS } from './runs/install-limits.ts'
import type { InstallLimits } from './runs/install-limits.ts'
import { hasAdmin } from './accounts/accounts.ts'

export interface CoordinatorOptions {
  dataDir: string
  /** Postgres connection string; embedded PGlite in dataDir when absent. */
  databaseUrl?: string
  /** Interface for both HTTP and libp2p; 127.0.0.1 unless exposing to other machines. */
  host?: string
  httpPort?: number
  p2pPort?: number
  /** Where agents reach the libp2p host when not at the address it listens on (--announce, checked by p2p/announce.ts): printed, in join commands, and the only relay addresses offered. */
  announce?: string[]
  webRoot?: string
  log?: Logger
  /** Round engine tick; tests shorten it. */
  tickMs?: number
  /** ||Δ|| / ||θ|| above which a report is refused. */
  normBoundRatio?: number
  /** Per-peer limits on the libp2p host; tests shorten the timeouts. */
  peerLimits?: Partial<PeerLimits>
  /** Report uploads' memory in all and how far one may fall behind the minimum rate (p2p/report-service.ts); tests shorten the grace. */
  reportUploads?: Partial<ReportUploadLimits>
  /** Unrevoked nodes one lab may hold (default 1000, nodes/nodes.ts); a new node past it is refused. */
  maxNodesPerOrganization?: number
  /** Anyone may sign up as an organizer (open communities); otherwise organizers are invited. */
  openOrganizing?: boolean
  /** Serve the dashboard and API over HTTPS with this certificate and key (PEM text). */
  tls?: { cert: string, key: string }
  /** Behind a reverse proxy that terminates TLS: believe its X-Forwarded-Proto/-For. */
  trustProxy?: boolean
  /** Serve GET /metrics for Prometheus (metrics/coordinator-metrics.ts), to loopback callers only. */
  metrics?: boolean
  /** Also serve /metrics to callers elsewhere that send `Authorization: Bearer <this>`. */
  metricsToken?: string
  /** The largest model whose reports the coordinator scores itself; above it, nodes score them (default 1M). */
  scoreMaxParams?: number
  /** The most FLOPs a checkpoint's validation loss may cost on the event loop; costlier ones are measured off it (`evaluator`; default 2e9). */
  inlineEvalFlops?: number
  /**
   * What measures the validation losses too costly for the event loop (default auto: PyTorch when
   * an interpreter has it, else the TypeScript forward pass on a worker thread); torch refuses to
   * start without it.
   */
  evaluator?: EvaluatorMode
  /** The interpreter torch evaluations run in (default $BARNRAISE_PYTHON, else python3, then /usr/bin/python3). */
  python?: string
  /** The device they run on: auto (the first GPU, else the CPU), cpu, cuda or cuda:N. */
  evalDevice?: string
  /** Checkpoints costing fewer FLOPs than this stay on the worker thread whatever `evaluator` says (default 50e9). */
  torchEvalFlops?: number
  /** The most FLOPs scoring one report may cost on the event loop; costlier ones go to nodes or nobody (default 2e9). */
  inlineScoreFlops?: number
  /** What a run may ask of this install (model size, sequence length, evaluation work). */
  limits?: Partial<InstallLimits>
  /** Sign-ups per address, run creations and dataset uploads per person, per hour. */
  rates?: Partial<ApiRateLimits>
  /** Live-update streams (SSE) served at once, in total and per address. */
  listenerLimits?: Partial<ListenerLimits>
}

/** How often runs waiting on a dataset that has settled are looked for, beside the dataset's own word. */
const AWAITING_SWEEP_MS = 5_000

const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/dist', import.meta.url))

/** Where a running coordinator listens for local admin requests. */
export function adminSocketPath (dataDir: string): string {
  return join(dataDir, 'admin.sock')
}

/** One coordinator process: database, libp2p host and protocols, HTTP API and dashboard. */
export class Coordinator {
  readonly libp2p: Libp2p
  readonly database: OpenedDatabase
  readonly presence: Presence
  /** Peers revoked lately, which every heartbeat reply lists (nodes/recent-revocations.ts). */
  readonly revocations: RecentRevocations
  readonly changes: ChangeFeed
  readonly engine: RoundEngine
  readonly blobs: BlobStore
  readonly url: string
  readonly log: Logger
  /** The one-time code that makes the first admin through the web; null when an admin exists. */
  readonly setupCode: string | null
  readonly #closers: Array<() => Promise<void>>

  private constructor (fields: { libp2p: Libp2p, database: OpenedDatabase, presence: Presence, revocations: RecentRevocations, changes: ChangeFeed, engine: RoundEngine, blobs: BlobStore, url: string, log: Logger, setupCode: string | null, closers: Array<() => Promise<void>> }) {
    this.libp2p = fields.libp2p
    this.database = fields.database
    this.presence = fields.presence
    this.revocations = fields.revocations
    this.changes = fields.changes
    this.engine = fields.engine
    this.blobs = fields.blobs
    this.url = fields.url
    this.log = fields.log
    this.setupCode = fields.setupCode
    this.#closers = fields.closers
  }

  /** Starts every part; on a failure part-way, stops what already started. */
  static async start (options: CoordinatorOptions): Promise<Coordinator> {
    const log = options.log ?? createLogger('coordinator')
    const host = options.host ?? '127.0.0.1'
    const closers: Array<() => Promise<void>> = []
    const unwind = async (): Promise<void> => {
      for (const close of closers.reverse()) await close().catch((err: unknown) => { log.error('shutdown step failed', { err }) })
    }
    // Before anything in the data directory is opened: an embedded database shared by two
    // processes corrupts, and a second libp2p host on the same key confuses every agent.
    // The directory holds the peer key, the embedded database and the admin socket: its owner only.
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 })
    chmodSync(options.dataDir, 0o700)
    const lock = lockDataDir(options.dataDir, 'a coordinator (coordinator serve)')
    closers.push(async () => { lock.release() })
    try {
      // Each torch evaluation writes the checkpoint (model-sized) to a private folder in here rather
      // than the OS's temporary folder, often a small tmpfs; what a killed process left is removed.
      const evaluationDir = join(options.dataDir, 'evaluation')
      await rm(evaluationDir, { recursive: true, force: true })
      await mkdir(evaluationDir, { mode: 0o700 })
      const torchOptions = { ...(options.python !== undefined ? { python: options.python } : {}), device: options.evalDevice ?? 'auto', tempDir: evaluationDir }
      const evaluationLog = log.child('evaluation')
      // --evaluator torch refuses to start without a working torch; auto probes when the first
      // costly checkpoint needs it (up to a minute for an interpreter that hangs), so the many
      // coordinators whose runs never need it (the demo, tests) never start Python.
      const mode = options.evaluator ?? 'auto'
      const evaluator: CheckpointEvaluator | ((signal: AbortSignal) => Promise<CheckpointEvaluator>) = mode === 'auto'
        ? async (signal) => await chooseEvaluator('auto', torchOptions, evaluationLog, signal)
        : await chooseEvaluator(mode, torchOptions, evaluationLog)
      const database = await openDatabase({ dataDir: options.dataDir, databaseUrl: options.databaseUrl, onIdleError: (err) => { log.warn('database connection lost while idle; the next query reconnects', { err }) } })
      closers.push(database.close)
      const installLimits: InstallLimits = { ...DEFAULT_INSTALL_LIMITS, ...options.limits }
      const setupCode = new SetupCode()
      const printedSetupCode = await hasAdmin(database.db) ? null : setupCode.issue()
      const { key } = await loadOrCreatePeerKey(join(options.dataDir, 'peer.key'))
      const ipProto = host.includes(':') ? 'ip6' : 'ip4'
      const limits: PeerLimits = resolvePeerLimits(options.peerLimits)
      const isRevoked = async (peerId: string): Promise<boolean> => await isRevokedPeer(database.db, peerId)
      // The presence set exists only with the host; the metrics read it when scraped.
      let online = (): number => 0
      const metrics = options.metrics === true ? new CoordinatorMetrics({ onlineNodes: () => online() }) : undefined
      const isEnrolled = async (peerId: string): Promise<boolean> => await isEnrolledPeer(database.db, peerId)
      const libp2p = await createCoordinatorHost({ privateKey: key, listen: [`/${ipProto}/${host}/tcp/${options.p2pPort ?? 0}`], ...(options.announce !== undefined ? { announce: options.announce } : {}), limits, isRevoked, isEnrolled, ...(metrics !== undefined ? { metrics: metrics.libp2p() } : {}) })
      closers.push(async () => { await libp2p.stop() })
      const presence = new Presence(libp2p)
      // From the database too: agents still remember a yes for a node revoked just before a restart.
      const revocations = await RecentRevocations.load(database.db)
      online = () => presence.onlineCount()
      const requestTimer = metrics === undefined ? undefined : (protocol: string) => metrics.request(protocol)
      const changes = new ChangeFeed(options.listenerLimits)
      presence.onChange(() => { changes.publish('nodes') })
      // Told once a minute per peer at most: a flood of refused streams is not a flood of log lines.
      const warned = new WindowLimiter({ limit: 1, windowMs: 60_000, maxKeys: 1000 })
      const onRateLimited = (peerId: string, protocol: string): void => {
        if (warned.retryAfter(peerId) > 0) return
        warned.hit(peerId)
        log.warn('streams refused: the peer opens them faster than allowed', { peerId, protocol, streamsPerSecond: limits.streamsPerSecond, streamBurst: limits.streamBurst })
      }
      const streamRate = new StreamRate({ perSecond: limits.streamsPerSecond, burst: limits.streamBurst })
      const components = { libp2p, db: database.db, log, streamRate, onRateLimited, ...(requestTimer !== undefined ? { requestTimer } : {}) }
      const enroll = new EnrollService({ ...components, onEnrolled: (peerId) => { presence.joined(peerId) }, ...(options.maxNodesPerOrganization !== undefined ? { maxNodesPerOrganization: options.maxNodesPerOrganization } : {}) })
      const heartbeat = new HeartbeatService({ ...components, revocations, onHeartbeat: (peerId, status) => { presence.heartbeat(peerId, status) } })
      await enroll.start()
      await heartbeat.start()
      const blobs = new DiskBlobStore(join(options.dataDir, 'blobs'))
      // The round loop: loaded runs and per-run locks, shared by the intake (reports in) and the engine (rounds out).
      // Validation losses too costly for the event loop (large models): by torch in a child process, or on a worker thread.
      const evaluation = new BackgroundEvaluation({ db: database.db, blobs, log: evaluationLog, evaluator, ...(options.torchEvalFlops !== undefined ? { torchMinFlops: options.torchEvalFlops } : {}), onMeasured: (runId) => { changes.publish('runs', runId) } })
      closers.push(async () => { await evaluation.stop() })
      const cache = new RunCache({
        db: database.db, blobs, log, evaluation,
        ...(options.scoreMaxParams !== undefined ? { scoreMaxParams: options.scoreMaxParams } : {}),
        ...(options.inlineEvalFlops !== undefined ? { inlineEvalFlops: options.inlineEvalFlops } : {}),
        ...(options.inlineScoreFlops !== undefined ? { inlineScoreFlops: options.inlineScoreFlops } : {})
      })
      const scoring = new NodeScoring({ db: database.db, presence, windows: async (runId) => await cache.scoringWindowsBlob(runId) })
      const locks = new RunLocks()
      const pins = new BlobPins()
      const intake = new ReportIntake({
        db: database.db, blobs, pins, cache, locks, changes, log,
        normBoundRatio: options.normBoundRatio ?? 1,
        scoring,
        ...(metrics !== undefined ? { onVerdict: (outcome: 'accepted' | 'held' | 'refused', code: string | null) => { metrics.report(outcome, code) } } : {}),
        // Close at quorum right away rather than at the next tick.
        onAccepted: () => { engine.nudge() }
      })
      const engine = new RoundEngine({
        db: database.db, blobs, pins, presence, changes, log, cache, locks, intake, scoring,
        ...(metrics !== undefined ? { onRoundEnded: (outcome: 'closed' | 'abandoned') => { metrics.round(outcome) } } : {}),
        ...(options.tickMs !== undefined ? { tickMs: options.tickMs } : {})
      })
      await new BlobService({ ...components, blobs, limits, ...(metrics !== undefined ? { onServed: (bytes: number) => { metrics.blobServed(bytes) } } : {}) }).start()
      await new SwarmService({ ...components, blobs, digests: new BlockDigests(blobs), ...(metrics !== undefined ? { onAnswered: (withPeers: boolean) => { metrics.swarmAnswered(withPeers) } } : {}) }).start()
      await new WorkService({ ...components, source: engine }).start()
      await new ReportService({ ...components, sink: intake, limits, isRevoked, ...(options.reportUploads !== undefined ? { uploads: options.reportUploads } : {}) }).start()
      // Stopped after the engine (closers run newest first), so a last round close is signed.
      closers.push(startLedgerHeadSigner({ db: database.db, key, changes, log }))
      // Before the engine starts: a close it makes meanwhile queues a newer checkpoint, which an
      // older one resumed after it would displace.
      await cache.resumeValidation().catch((err: unknown) => { log.warn('checkpoint validation not resumed', { error: err instanceof Error ? err.message : String(err) }) })
      engine.start()
      closers.push(async () => { await engine.stop() })
      const folderCache = new FolderCache()
      const awaiting = { db: database.db, blobs, log, changes }
      const datasets = new DatasetLibrary({
        db: database.db, blobs, log, changes, stagingDir: join(options.dataDir, 'uploads'), quota: installLimits,
        onSettled: async (id) => { await settleAwaitingRuns(awaiting, id) }
      })
      closers.push(async () => { await datasets.stop() })
      await datasets.resume()
      // Also every few seconds: a run launched in the moment its dataset settled, or before a
      // restart, would otherwise wait for nothing.
      await settleAwaitingRuns(awaiting)
      const sweep = setInterval(() => { settleAwaitingRuns(awaiting).catch((err: unknown) => { log.error('settling runs that await a dataset failed', { err }) }) }, AWAITING_SWEEP_MS)
      closers.push(async () => { clearInterval(sweep) })
      const http = await startHttpServer({
        host,
        port: options.httpPort ?? 0,
        services: { db: database.db, presence, revocations, log, changes, blobs, multiaddrs: () => libp2p.getMultiaddrs().map((ma) => ma.toString()), setupCode, openOrganizing: options.openOrganizing ?? false, signIns: new SignInThrottle(), limits: installLimits, rates: apiRates(options.rates), folderCache, datasets },
        webRoot: options.webRoot ?? DEFAULT_WEB_ROOT,
        downloads: { db: database.db, blobs, folderCache },
        log,
        ...(options.tls !== undefined ? { tls: options.tls } : {}),
        trustProxy: options.trustProxy ?? false,
        ...(metrics !== undefined ? { metrics } : {}),
        ...(options.metricsToken !== undefined ? { metricsToken: options.metricsToken } : {})
      })
      closers.push(async () => { await closeServer(http.server) })
      const adminPath = adminSocketPath(options.dataDir)
      const admin = await startAdminSocket(adminPath, adminOperations({ db: database.db, blobs, changes, limits: installLimits }), log)
      closers.push(async () => { await closeServer(admin); await rm(adminPath, { force: true }) })
      writeRunningInstall(options.dataDir, { pid: process.pid, url: http.url, multiaddrs: libp2p.getMultiaddrs().map((ma) => ma.toString()), database: database.kind })
      closers.push(async () => { clearRunningInstall(options.dataDir) })
      return new Coordinator({ libp2p, database, presence, revocations, changes, engine, blobs, url: http.url, log, setupCode: printedSetupCode, closers })
    } catch (err) {
      await unwind()
      throw err
    }
  }

  /** Multiaddrs agents dial, each ending in /p2p/<peer id>. */
  get multiaddrs (): string[] {
    return this.libp2p.getMultiaddrs().map((ma) => ma.toString())
  }

  /** Stops everything it started, newest first. */
  async stop (): Promise<void> {
    for (const close of [...this.#closers].reverse()) {
      await close().catch((err: unknown) => { this.log.error('shutdown step failed', { err }) })
    }
  }
}

async function closeServer (server: Server): Promise<void> {
  server.closeAllConnections?.()
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
}

// Checkpoints that spread between peers (issue 14):
//   pnpm bench spread        (BENCH_SPREAD_AGENTS=20  BENCH_SPREAD_MB=100)
// One real coordinator (`coordinator serve`, Postgres in a fresh database, --metrics) with a run
// whose model makes a checkpoint of about BENCH_SPREAD_MB, and BENCH_SPREAD_AGENTS agents in
// this process: real libp2p hosts on TCP loopback, each with its own key, that enroll, take a
// work unit of the run's first round (they never train) and fetch its base checkpoint, all at
// once, twice: first the way an agent without peer exchange does (the blob protocol, from the
// coordinator alone), then with peer exchange (node-agent/src/peers/: the swarm protocol, Bitswap
// between the agents, the coordinator for each agent's share and whatever stalls). Coordinator
// egress is read from its own GET /metrics (barnraise_blob_bytes_served_total) around each
// phase; every agent checks the whole checkpoint's sha256 in both.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { llamaConfigSchema, loadOrCreatePeerKey } from '@barnraise/protocol'
import type { WorkUnit } from '@barnraise/protocol'
import { countParams } from '@barnraise/trainer'
import { createAgentHost } from '../node-agent/src/host.ts'
import { BlobCache } from '../node-agent/src/blob-cache.ts'
import { CoordinatorClient, isRetryable, parseCoordinatorAddress } from '../node-agent/src/coordinator-client.ts'
import { backoffDelay } from '../node-agent/src/backoff.ts'
import { PeerExchange } from '../node-agent/src/peers/peer-exchange.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import { AGENT_VERSION } from '../node-agent/src/version.ts'
import { createTestDatabase } from '../test/support/postgres.ts'
import { createRunViaCli } from '../test/support/runs.ts'
import { startBenchCoordinator } from './scale/coordinator-process.ts'
import { scrape, valueOf } from './scale/prometheus.ts'

const AGENTS = Number(process.env.BENCH_SPREAD_AGENTS ?? 20)
const TARGET_MB = Number(process.env.BENCH_SPREAD_MB ?? 100)
if (!Number.isInteger(AGENTS) || AGENTS < 2 || !(TARGET_MB > 0)) {
  process.stderr.write('BENCH_SPREAD_AGENTS must be a whole number of at least 2 and BENCH_SPREAD_MB positive\n')
  process.exit(2)
}
const say = (line: string): void => { process.stdout.write(line + '\n') }
const MB = 1e6

/** A byte-level Llama whose F32 checkpoint is about `mb` megabytes (3.2M parameters a layer). */
function modelOfSize (mb: number): Record<string, number | boolean> {
  const perLayer = 4 * 512 * 512 + 3 * 512 * 1408
  return { vocab_size: 256, hidden_size: 512, intermediate_size: 1408, num_hidden_layers: Math.max(1, Math.round(mb * MB / 4 / perLayer)), num_attention_heads: 8, max_position_embeddings: 64, tie_word_embeddings: false }
}

const egress = async (url: string): Promise<number> => valueOf(await scrape(url), 'barnraise_blob_bytes_served_total') ?? 0

const work = await mkdtemp(join(tmpdir(), 'barnraise-spread-'))
const database = await createTestDatabase()
const coordinator = await startBenchCoordinator({ dataDir: join(work, 'coordinator'), databaseUrl: database.url, args: [] })
const hosts: Array<Awaited<ReturnType<typeof createAgentHost>>> = []
const exchanges: PeerExchange[] = []
try {
  const model = modelOfSize(TARGET_MB)
  const params = countParams(llamaConfigSchema.parse(model))
  say(`spread: ${AGENTS} agents, a ${model.num_hidden_layers}-layer model of ${(params / 1e6).toFixed(1)}M parameters (${(params * 4 / MB).toFixed(0)} MB checkpoint), coordinator and agents on this machine`)
  const token = await coordinator.createToken('Spread Lab', AGENTS)
  const runId = await createRunViaCli(coordinator.dataDir, {
    name: 'spread',
    model: { config: model },
    dataset: { source: 'demo-corpus' },
    recipe: { innerSteps: 1, batchSize: 1, seqLen: 16, innerLr: 0.001, warmupSteps: 1 },
    codec: 'int8',
    rounds: 1,
    minNodes: AGENTS,
    maxNodes: AGENTS,
    roundDeadlineSeconds: 3600,
    evalBatches: 1
  }, { DATABASE_URL: database.url })
  const address = parseCoordinatorAddress(coordinator.multiaddr)
  const agents = await Promise.all(Array.from({ length: AGENTS }, async (_, i) => {
    const dir = join(work, `agent-${i}`)
    await mkdir(dir, { recursive: true })
    const { key } = await loadOrCreatePeerKey(join(dir, 'peer.key'))
    const libp2p = await createAgentHost(key, undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
    hosts.push(libp2p)
    const client = new CoordinatorClient(libp2p, address)
    // The coordinator turns away a burst of new connections from one address: retry as agents do.
    for (let attempt = 0; ; attempt++) {
      try {
        await client.enroll({ type: 'enroll', agentVersion: AGENT_VERSION, token, name: `spread-${i}`, hardware: { hostname: `spread-${i}`, platform: process.platform, arch: process.arch, cpuModel: 'simulated', cpuCores: 1, memoryBytes: 2 ** 34, gpus: [] } })
        break
      } catch (err) {
        if (attempt >= 20 || !isRetryable(err)) throw err
        await sleep(backoffDelay(attempt))
      }
    }
    return { libp2p, client, dir }
  }))
  // The round opens once all of them are online; each asks until it holds its unit.
  const units = await Promise.all(agents.map(async (a) => {
    for (let tries = 0; tries < 600; tries++) {
      const reply = await a.client.requestWork()
      if (reply.kind === 'unit') return reply.unit
      await sleep(reply.kind === 'wait' ? Math.min(reply.retryAfterMs, 1000) : 1000)
    }
    throw new Error('no work unit after 600 tries')
  })) as WorkUnit[]
  const base = units[0]!.baseCheckpoint
  if (units.some((u) => u.baseCheckpoint !== base || u.runId !== runId)) throw new Error('the agents were given different bases')

  const phase = async (name: string, fetch: (a: typeof agents[number]) => Promise<void>): Promise<{ egress: number, seconds: number }> => {
    const before = await egress(coordinator.url)
    const started = performance.now()
    await Promise.all(agents.map(fetch))
    const seconds = (performance.now() - started) / 1000
    const bytes = await egress(coordinator.url) - before
    say(`spread: ${name}: every agent holds the verified checkpoint in ${seconds.toFixed(1)} s; coordinator egress ${(bytes / MB).toFixed(0)} MB`)
    return { egress: bytes, seconds }
  }
  let size = 0
  const without = await phase('without peers', async (a) => {
    const dir = join(a.dir, 'plain-phase')
    await mkdir(dir, { recursive: true })
    size = (await new BlobCache(dir, a.libp2p, address).get(base)).byteLength
  })
  // What went wrong along the way (a peer that could not be dialled, a fall-back), for BENCH_SPREAD_LOG=1.
  const log = (message: string, fields: Record<string, unknown>): void => {
    if (process.env.BENCH_SPREAD_LOG === '1') process.stderr.write(`${message} ${JSON.stringify(fields, (_k, v: unknown) => v instanceof Error ? v.message : v)}\n`)
  }
  const withPeers = await phase('with peer exchange', async (a) => {
    const peers = await PeerExchange.start(a.libp2p, address, { log })
    exchanges.push(peers)
    const dir = join(a.dir, 'peers')
    const cache = new BlobCache(dir, a.libp2p, address, { peers, log })
    const bytes = await cache.get(base)
    if (bytes.byteLength !== size) throw new Error('short checkpoint')
  })
  const fromPeers = exchanges.reduce((n, e) => n + e.stats.fromPeers, 0)
  const fromCoordinator = exchanges.reduce((n, e) => n + e.stats.fromCoordinator, 0)
  say(`spread: with peer exchange the agents took ${(fromPeers / size).toFixed(1)}× the checkpoint from each other and ${(fromCoordinator / size).toFixed(2)}× from the coordinator (agent side)`)
  say(`spread: time to spread ${withPeers.seconds.toFixed(1)} s with peers, ${without.seconds.toFixed(1)} s without (loopback: the coordinator's link is not the limit here, so time is not the point)`)
  say(`spread: coordinator egress ${(withPeers.egress / size).toFixed(1)}× checkpoint size with ${AGENTS} agents (without peers ${(without.egress / size).toFixed(0)}×)`)
} catch (err) {
  process.stderr.write(`spread bench failed: ${(err as Error).stack ?? String(err)}\n${coordinator.logTail()}\n`)
  process.exitCode = 1
} finally {
  for (const e of exchanges) await e.stop().catch(() => {})
  await Promise.allSettled(hosts.map(async (h) => { await h.stop() }))
  await coordinator.stop()
  await database.drop()
  await rm(work, { recursive: true, force: true })
}

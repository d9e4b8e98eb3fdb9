#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { DataDirLockedError, agentJoinCommand, dataDirOwner, isParseArgsError, lockDataDir, onStopSignal } from '@barnraise/protocol'
import { Coordinator, adminSocketPath } from './coordinator.ts'
import { readPassword } from './install/read-password.ts'
import { DEFAULT_INSTALL_LIMITS } from './runs/install-limits.ts'
import type { InstallLimits } from './runs/install-limits.ts'
import type { PeerLimits } from './p2p/peer-limits.ts'
import type { ReportUploadLimits } from './p2p/report-service.ts'
import { checkAnnounceAddress } from './p2p/announce.ts'
import { openDatabase } from './db/open-database.ts'
import { adminRequest } from './admin/admin-socket.ts'
import { createTokenInputSchema } from './nodes/operator-tokens.ts'
import { coordinatorDataDir, hasEmbeddedDatabase, readRunningInstall } from './install/install-dir.ts'
import { ledgerVerifyCommand } from './ledger/verify-command.ts'
import { adminOperations } from './admin/admin-operations.ts'
import { DiskBlobStore } from './blobs/blob-store.ts'
import { metricsTokenProblem } from './http/server.ts'
import { TorchEvaluationError } from './checkpoints/torch-evaluation.ts'

const USAGE = `usage: barnraise-coordinator <command> [options]

commands:
  serve                      run the coordinator (libp2p host, HTTP API, dashboard)
    --open-organizing        anyone may sign up as an organizer (default: organizers are invited)
    --tls-cert F --tls-key F serve HTTPS with this PEM certificate and key (the session cookie is Secure)
    --trust-proxy            behind a TLS-terminating reverse proxy: believe X-Forwarded-Proto/-For
    --metrics                serve GET /metrics for Prometheus (rounds, verdicts by code, bytes and
                             latency per protocol, process); counts only, no peer ids; to callers on
                             this machine only (behind --trust-proxy: those the proxy says are)
    --metrics-token-file F   also to callers elsewhere that send Authorization: Bearer <the token in F>
                             (or set BARNRAISE_METRICS_TOKEN); at least 16 characters
    --score-max-params N     the largest model whose reports this coordinator scores itself when a
                             run screens them (default 1e6); above it, two other nodes score each
    --inline-eval-gflop N    a checkpoint's validation loss costing more GFLOP than this (default 2)
                             is measured on a worker thread after its round closes, the newest
                             checkpoint of each run when the thread is free (0: every one)
    --inline-score-gflop N   scoring one report of a screened run costing more GFLOP than this
                             (default 2) is left to two other nodes, or nobody; apart from
                             --inline-eval-gflop, so the coordinator can score inline without
                             also measuring large validation losses on its event loop
    --evaluator auto|typescript|torch
                             what measures the validation losses above --inline-eval-gflop
                             (default auto): torch runs python -m barnraise_torch.evaluate once a
                             checkpoint (minutes for a 125M model on a CPU, seconds on a GPU, where
                             the TypeScript forward pass on a worker thread takes hours); auto uses
                             it when --python has torch, else the worker thread; torch refuses to
                             start without it. A torch evaluation that fails (crash, out of memory)
                             is measured on the worker thread instead
    --torch-eval-gflop N     torch measures only checkpoints costing at least this many GFLOP
                             (default 50, about half a minute on the worker thread): below it
                             starting Python costs more than it saves
    --python PATH            the interpreter with torch for --evaluator (default $BARNRAISE_PYTHON,
                             else python3, then /usr/bin/python3)
    --eval-device D          where torch evaluates: auto (the first GPU, else the CPU), cpu, cuda,
                             cuda:N (default auto; cpu keeps a GPU an agent trains on to itself)
    --max-params N           the largest model a run may use (default 1.2e9); also --max-seq-len N
                             (default 8192) and --max-eval-batches N (default 64), --max-batch-size N
                             (default 1024) and --max-eval-tokens N (default 4194304: evalBatches ×
                             batchSize × seqLen a checkpoint)
    --max-open-runs N        unfinished runs one organizer may own at once (default 10)
    --dataset-quota-mb N     storage for dataset shards, all uploads together (default 4096); an
                             upload in progress holds room for its whole file while it moves, only
                             what it received once stalled (no piece for an hour, or under 64 KiB/s)
    --user-dataset-quota-mb N  the part of it one account may take, stored and held together
                             (default: all of it); it bounds one account, not one person: with open
                             sign-ups (--open-organizing) one person may hold several
    --max-kept-report-mb N   memory a round may hold for rules that keep reports whole (default 8192)
    --max-report-upload-mb N memory report uploads in progress may hold, all together (default 8192;
                             each is buffered whole until its verdict); past it a new upload is
                             answered ERR_BUSY, except that one always fits when none is in flight
    --max-nodes-per-lab N    unrevoked nodes one lab may enroll (default 1000); past it a new node
                             is refused ERR_QUOTA_EXCEEDED until the lab revokes some
    --max-connections N      libp2p connections held at once, all peers together (default 1000)
    --connections-per-ip N   new libp2p connections one IP address may open per second (default 5;
                             raise it only where many nodes share an address, e.g. a load test on loopback)
    --peer-streams-per-second N  libp2p streams one peer id may open per second, all protocols
                             together, after a burst of --peer-stream-burst (defaults 100 and 600)
    --peer-stream-burst N
    --allow-private-shard-urls  datasets given as shard URLs may name loopback and private
                             addresses (for local tests; refused by default)
    --data-dir DIR           where state lives (default: this checkout's .data/coordinator, the
                             install \`pnpm start\` runs; or set BARNRAISE_COORDINATOR_DIR)
    --database-url URL       use this Postgres instead of embedded PGlite (or set DATABASE_URL)
    --host HOST              interface to listen on (default 127.0.0.1; 0.0.0.0 to accept other machines)
    --http-port N            dashboard and API port (default 8080; 0 picks a free one)
    --p2p-port N             libp2p TCP port (default 4001; 0 picks a free one)
    --announce ADDR          where agents reach that port when it is not this machine's own
                             address (behind NAT, a port forward, a DNS name), e.g.
                             /dns4/coordinator.example.org/tcp/4001; repeatable; join commands use it
  token create [--org NAME] issue an enrollment token (for the install's only organization,
                             or the one named; a new name creates it) and print the join command
    --uses N                 how many nodes may enroll with it (default 1)
    --expires-in HOURS       token lifetime (default: no expiry)
    --json                   print the token, its organization, uses, expiry and join command as one JSON line
  user create --email E --name N [--admin | --role organizer|lab_admin|funder] [--org NAME]
                             create a dashboard account; the password is read from a prompt,
                             from stdin (--password-stdin) or a file (--password-file F), never argv
  user password --email E    set an account's password (a forgotten one, the admin's too) and end
                             all its sessions; read as for user create
  run create --spec FILE     create a run from a JSON spec (see docs/run-spec.md); --start to start it;
    --owner EMAIL            the organizer who owns (steers) it; without one only an admin can
  run list                   the install's runs, newest first
  run start|pause|resume|stop --run ID
                             ID: a run id, its first characters, or the run's name
  ledger verify --run ID     verify a run's ledger end to end, offline; names the first bad row
    --from URL|FILE          a coordinator's base URL or an exported ledger.json (default http://127.0.0.1:8080/);
                             from a URL it also checks every head the coordinator signed
    --head FILE              ledger heads you saved earlier (ledger-heads.json): fails if history was rewritten
    --coordinator PEER_ID    the coordinator that must have signed the heads
  (token, user and run commands take --data-dir and --database-url as serve does; they talk to
   the running coordinator through its admin socket, or open its database when none runs;
   they never create a new one)
  help                       this text
`

function fail (message: string): number {
  process.stderr.write(`barnraise-coordinator: ${message}\n`)
  return 2
}

async function serve (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' },
      'database-url': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'http-port': { type: 'string', default: '8080' },
      'p2p-port': { type: 'string', default: '4001' },
      announce: { type: 'string', multiple: true },
      'open-organizing': { type: 'boolean', default: false },
      'allow-private-shard-urls': { type: 'boolean', default: false },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'trust-proxy': { type: 'boolean', default: false },
      metrics: { type: 'boolean', default: false },
      'metrics-token-file': { type: 'string' },
      'score-max-params': { type: 'string' },
      'inline-eval-gflop': { type: 'string' },
      'inline-score-gflop': { type: 'string' },
      evaluator: { type: 'string', default: 'auto' },
      python: { type: 'string' },
      'eval-device': { type: 'string' },
      'torch-eval-gflop': { type: 'string' },
      'max-params': { type: 'string' },
      'max-seq-len': { type: 'string' },
      'max-eval-batches': { type: 'string' },
      'max-batch-size': { type: 'string' },
      'max-eval-tokens': { type: 'string' },
      'max-open-runs': { type: 'string' },
      'dataset-quota-mb': { type: 'string' },
      'user-dataset-quota-mb': { type: 'string' },
      'max-kept-report-mb': { type: 'string' },
      'max-report-upload-mb': { type: 'string' },
      'max-nodes-per-lab': { type: 'string' },
      'max-connections': { type: 'string' },
      'connections-per-ip': { type: 'string' },
      'peer-streams-per-second': { type: 'string' },
      'peer-stream-burst': { type: 'string' }
    }
  })
  const httpPort = Number(values['http-port'])
  const p2pPort = Number(values['p2p-port'])
  if (!Number.isInteger(httpPort) || httpPort < 0 || httpPort > 65535) return fail('--http-port must be a port number')
  if (!Number.isInteger(p2pPort) || p2pPort < 0 || p2pPort > 65535) return fail('--p2p-port must be a port number')
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) return fail('--tls-cert and --tls-key go together')
  const announce: string[] = []
  for (const text of values.announce ?? []) {
    const checked = checkAnnounceAddress(text)
    if (!checked.ok) return fail(checked.message)
    announce.push(checked.address)
  }
  const limits: Partial<InstallLimits> = {}
  const limitFlags = [['max-params', 'maxParams', 1], ['max-seq-len', 'maxSeqLen', 1], ['max-eval-batches', 'maxEvalBatches', 1],
    ['max-batch-size', 'maxBatchSize', 1], ['max-eval-tokens', 'maxEvalTokens', 1],
    ['max-open-runs', 'maxOpenRuns', 1], ['dataset-quota-mb', 'datasetQuotaBytes', 1024 * 1024],
    ['user-dataset-quota-mb', 'userDatasetQuotaBytes', 1024 * 1024], ['max-kept-report-mb', 'maxKeptReportBytes', 1024 * 1024]] as const
  for (const [flag, key, unit] of limitFlags) {
    const text = values[flag]
    if (text === undefined) continue
    const n = Number(text)
    if (!Number.isSafeInteger(n) || n < 1) return fail(`--${flag} must be a whole number of at least 1`)
    limits[key] = n * unit
  }
  // A share larger than the whole is a typo or a forgotten --dataset-quota-mb, not a wish.
  const wholeQuota = limits.datasetQuotaBytes ?? DEFAULT_INSTALL_LIMITS.datasetQuotaBytes
  if (limits.userDatasetQuotaBytes !== undefined && limits.userDatasetQuotaBytes > wholeQuota) {
    return fail(`--user-dataset-quota-mb (${limits.userDatasetQuotaBytes / 1024 / 1024}) is more than the whole --dataset-quota-mb (${wholeQuota / 1024 / 1024}); lower it or raise --dataset-quota-mb`)
  }
  if (values['allow-private-shard-urls'] === true) limits.allowPrivateShardUrls = true
  const peerLimits: Partial<PeerLimits> = {}
  for (const [flag, key] of [['max-connections', 'maxConnections'], ['connections-per-ip', 'inboundConnectionThreshold'], ['peer-streams-per-second', 'streamsPerSecond'], ['peer-stream-burst', 'streamBurst']] as const) {
    const text = values[flag]
    if (text === undefined) continue
    const n = Number(text)
    if (!Number.isSafeInteger(n) || n < 1) return fail(`--${flag} must be a whole number of at least 1`)
    peerLimits[key] = n
  }
  const reportUploads: Partial<ReportUploadLimits> = {}
  let maxNodesPerOrganization: number | undefined
  for (const flag of ['max-report-upload-mb', 'max-nodes-per-lab'] as const) {
    const text = values[flag]
    if (text === undefined) continue
    const n = Number(text)
    if (!Number.isSafeInteger(n) || n < 1) return fail(`--${flag} must be a whole number of at least 1`)
    if (flag === 'max-report-upload-mb') reportUploads.maxInFlightBytes = n * 1024 * 1024
    else maxNodesPerOrganization = n
  }
  const scoreMaxParams = values['score-max-params'] === undefined ? undefined : Number(values['score-max-params'])
  if (scoreMaxParams !== undefined && !(Number.isSafeInteger(scoreMaxParams) && scoreMaxParams >= 0)) return fail('--score-max-params must be a whole number (0: nodes score every screened report)')
  const inlineEvalGflop = values['inline-eval-gflop'] === undefined ? undefined : Number(values['inline-eval-gflop'])
  if (inlineEvalGflop !== undefined && !(Number.isFinite(inlineEvalGflop) && inlineEvalGflop >= 0 && inlineEvalGflop <= 1e6)) return fail('--inline-eval-gflop must be a number from 0 to 1000000 (0: every validation loss on a worker thread)')
  const inlineScoreGflop = values['inline-score-gflop'] === undefined ? undefined : Number(values['inline-score-gflop'])
  if (inlineScoreGflop !== undefined && !(Number.isFinite(inlineScoreGflop) && inlineScoreGflop >= 0 && inlineScoreGflop <= 1e6)) return fail('--inline-score-gflop must be a number from 0 to 1000000 (0: the coordinator scores no report itself)')
  const evaluator = values.evaluator
  if (evaluator !== 'auto' && evaluator !== 'typescript' && evaluator !== 'torch') return fail('--evaluator must be auto, typescript or torch')
  if (values.python === '') return fail('--python needs a path (or a name on PATH)')
  const torchEvalGflop = values['torch-eval-gflop'] === undefined ? undefined : Number(values['torch-eval-gflop'])
  if (torchEvalGflop !== undefined && !(Number.isFinite(torchEvalGflop) && torchEvalGflop >= 0 && torchEvalGflop <= 1e9)) return fail('--torch-eval-gflop must be a number from 0 to 1000000000 (0: torch measures every checkpoint off the event loop)')
  const evalDevice = values['eval-device']
  if (evalDevice !== undefined && !/^(auto|cpu|cuda(:\d+)?)$/.test(evalDevice)) return fail('--eval-device must be auto, cpu, cuda or cuda:N')
  let tls: { cert: string, key: string } | undefined
  if (values['tls-cert'] !== undefined && values['tls-key'] !== undefined) {
    try {
      tls = { cert: await readFile(values['tls-cert'], 'utf8'), key: await readFile(values['tls-key'], 'utf8') }
    } catch (err) {
      return fail(`cannot read the TLS certificate or key: ${(err as Error).message}`)
    }
  }
  // A token from a file or the environment, never argv: argv lands in shell history and `ps`.
  let metricsToken: string | undefined
  if (values['metrics-token-file'] !== undefined) {
    try {
      metricsToken = (await readFile(values['metrics-token-file'], 'utf8')).trim()
    } catch (err) {
      return fail(`cannot read the metrics token: ${(err as Error).message}`)
    }
  } else if (process.env.BARNRAISE_METRICS_TOKEN !== undefined && process.env.BARNRAISE_METRICS_TOKEN !== '') {
    metricsToken = process.env.BARNRAISE_METRICS_TOKEN
  }
  if (metricsToken !== undefined) {
    if (values.metrics !== true) return fail('a metrics token (--metrics-token-file or BARNRAISE_METRICS_TOKEN) is for --metrics; add --metrics, or leave the token out')
    const problem = metricsTokenProblem(metricsToken)
    if (problem !== null) return fail(problem)
  }
  let coordinator: Coordinator
  try {
    coordinator = await Coordinator.start({
      dataDir: resolve(coordinatorDataDir(values['data-dir'])),
      databaseUrl: values['database-url'] ?? process.env.DATABASE_URL,
      host: values.host,
      httpPort,
      p2pPort,
      ...(announce.length > 0 ? { announce } : {}),
      openOrganizing: values['open-organizing'],
      ...(tls !== undefined ? { tls } : {}),
      trustProxy: values['trust-proxy'],
      metrics: values.metrics,
      ...(metricsToken !== undefined ? { metricsToken } : {}),
      ...(scoreMaxParams !== undefined ? { scoreMaxParams } : {}),
      ...(inlineEvalGflop !== undefined ? { inlineEvalFlops: inlineEvalGflop * 1e9 } : {}),
      ...(inlineScoreGflop !== undefined ? { inlineScoreFlops: inlineScoreGflop * 1e9 } : {}),
      evaluator,
      ...(values.python !== undefined ? { python: values.python } : {}),
      ...(evalDevice !== undefined ? { evalDevice } : {}),
      ...(torchEvalGflop !== undefined ? { torchEvalFlops: torchEvalGflop * 1e9 } : {}),
      limits,
      peerLimits,
      reportUploads,
      ...(maxNodesPerOrganization !== undefined ? { maxNodesPerOrganization } : {})
    })
  } catch (err) {
    if (err instanceof DataDirLockedError) {
      const running = readRunningInstall(err.dir)
      return fail(`a coordinator is already running on ${err.dir} (pid ${err.owner.pid}${running !== undefined ? `, dashboard ${running.url}` : ''}).\n` +
        `Use that one, stop it first (Ctrl-C in its terminal, or kill ${err.owner.pid}), or serve another install with --data-dir DIR.`)
    }
    if (err instanceof TorchEvaluationError) return fail(err.message)
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      return fail(`a port is already in use (${(err as Error).message}); pick others with --http-port and --p2p-port, or stop the other coordinator`)
    }
    throw err
  }
  for (const ma of coordinator.multiaddrs) process.stdout.write(`coordinator multiaddr: ${ma}\n`)
  process.stdout.write(`coordinator database: ${coordinator.database.kind}\n`)
  if (coordinator.setupCode !== null) {
    process.stdout.write(`coordinator setup code: ${coordinator.setupCode}\n` +
      `  No admin yet: open ${new URL(`signup?setup=${coordinator.setupCode}`, coordinator.url).toString()} to become the admin\n` +
      '  (or run `pnpm coordinator user create --admin --email ...` here). Web sign-up waits until then.\n')
  }
  process.stdout.write(`coordinator dashboard: ${coordinator.url}\n`)
  await new Promise<void>((resolveStop) => {
    const removeStopSignal = onStopSignal(() => {
      process.stdout.write('coordinator: stopping\n')
      coordinator.stop().then(resolveStop, resolveStop).finally(removeStopSignal)
    })
  })
  return 0
}

/**
 * Performs an admin operation on the install in `dataDir`: through the running coordinator's
 * socket, or on its database when none runs. Never creates a database: a wrong --data-dir
 * says where it looked instead of answering from an empty one.
 */
async function admin<T> (dataDir: string, databaseUrl: string | undefined, route: string, body: unknown): Promise<T> {
  const socket = adminSocketPath(dataDir)
  const owner = dataDirOwner(dataDir)
  if (owner !== undefined) {
    if (!existsSync(socket)) throw new Error(`the coordinator on ${dataDir} (pid ${owner.pid}) is still starting; try again in a few seconds`)
    return await adminRequest<T>(socket, route, body)
  }
  if ((databaseUrl === undefined || databaseUrl === '') && !hasEmbeddedDatabase(dataDir)) {
    throw new Error(`no Barnraise install at ${dataDir}: no coordinator runs there and it holds no database.\n` +
      'Start one with `pnpm start` (or `pnpm coordinator serve`), or point at yours with --data-dir DIR (or BARNRAISE_COORDINATOR_DIR); for a Postgres install pass --database-url.')
  }
  // Nobody serves this install: hold its lock while we open the database ourselves.
  const lock = lockDataDir(dataDir, `the coordinator CLI (${route})`)
  try {
    const database = await openDatabase({ dataDir, databaseUrl })
    try {
      return await adminOperations({ db: database.db, blobs: new DiskBlobStore(join(dataDir, 'blobs')) })[route]!(body) as T
    } finally {
      await database.close()
    }
  } finally {
    lock.release()
  }
}

/** The install's data dir and database URL from the shared flags. */
function installOf (values: { 'data-dir'?: string, 'database-url'?: string }): { dataDir: string, databaseUrl: string | undefined } {
  return { dataDir: resolve(coordinatorDataDir(values['data-dir'])), databaseUrl: values['database-url'] ?? process.env.DATABASE_URL }
}

/** The join command an operator can paste, with the running coordinator's address when known. */
function joinCommand (dataDir: string, token: string): string {
  return agentJoinCommand(readRunningInstall(dataDir)?.multiaddrs ?? [], token)
}

async function runCommand (argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  const { values } = parseArgs({
    args: rest,
    options: {
      spec: { type: 'string' },
      run: { type: 'string' },
      start: { type: 'boolean', default: false },
      owner: { type: 'string' },
      'data-dir': { type: 'string' },
      'database-url': { type: 'string' }
    }
  })
  const { dataDir, databaseUrl } = installOf(values)
  if (sub === 'list') {
    try {
      const runs = await admin<Array<{ id: string, name: string, status: string, round: number, tokensSeen: number }>>(dataDir, databaseUrl, '/runs/list', {})
      if (runs.length === 0) process.stdout.write('no runs yet; create one from the dashboard or with: pnpm coordinator run create --spec FILE\n')
      for (const r of runs) process.stdout.write(`${r.id}  ${r.status.padEnd(9)}  round ${String(r.round).padStart(5)}  ${r.tokensSeen.toLocaleString('en-US').padStart(13)} tokens  ${r.name}\n`)
      return 0
    } catch (err) {
      return fail(`run list: ${(err as Error).message}`)
    }
  }
  if (sub === 'create') {
    if (values.spec === undefined) return fail('run create: --spec FILE is required')
    let spec: unknown
    try {
      spec = JSON.parse(await readFile(values.spec, 'utf8'))
    } catch (err) {
      return fail(`run create: cannot read ${values.spec}: ${(err as Error).message}`)
    }
    try {
      const run = await admin<{ id: string, name: string, status: string, paramCount: number, awaitingDataset?: boolean }>(dataDir, databaseUrl, '/runs', { spec, start: values.start, ...(values.owner !== undefined ? { owner: values.owner } : {}) })
      const waits = run.awaitingDataset === true ? `; it waits for its dataset to be tokenized${values.start === true ? ', then starts' : ''}` : ''
      process.stdout.write(`run ${run.id} "${run.name}" created (${run.status}, ${run.paramCount.toLocaleString('en-US')} parameters${waits})\n`)
      return 0
    } catch (err) {
      return fail(`run create: ${(err as Error).message}`)
    }
  }
  if (sub === 'start' || sub === 'pause' || sub === 'resume' || sub === 'stop') {
    if (values.run === undefined) return fail(`run ${sub}: --run ID is required`)
    try {
      const result = await admin<{ id: string, name: string, status: string }>(dataDir, databaseUrl, '/runs/status', { run: values.run, action: sub })
      process.stdout.write(`run ${result.id} "${result.name}" is ${result.status}\n`)
      return 0
    } catch (err) {
      return fail(`run ${sub}: ${(err as Error).message}`)
    }
  }
  return fail('unknown run subcommand; try: run list, run create --spec FILE, run pause --run ID')
}

async function ledgerVerify (argv: string[]): Promise<number> {
  return await ledgerVerifyCommand(argv, (line) => { process.stdout.write(line + '\n') }, fail)
}

/** Options of the commands that take an account and its password (never from argv: `password` is only there to refuse it). */
const ACCOUNT_OPTIONS = {
  email: { type: 'string' },
  password: { type: 'string' },
  'password-file': { type: 'string' },
  'password-stdin': { type: 'boolean', default: false },
  'data-dir': { type: 'string' },
  'database-url': { type: 'string' }
} as const

async function userPassword (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...ACCOUNT_OPTIONS }
  })
  if (values.password !== undefined) {
    return fail('user password: a password on the command line lands in shell history and `ps`; use --password-stdin, --password-file FILE, or answer the prompt')
  }
  if (values.email === undefined) return fail('user password: say whose (--email E)')
  try {
    const password = await readPassword({ file: values['password-file'], stdin: values['password-stdin'] })
    const { dataDir, databaseUrl } = installOf(values)
    const user = await admin<{ id: string, email: string }>(dataDir, databaseUrl, '/users/password', { email: values.email, password })
    process.stdout.write(`password of ${user.email} set; all its sessions ended (sign in again)\n`)
    return 0
  } catch (err) {
    return fail(`user password: ${(err as Error).message}`)
  }
}

async function userCreate (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...ACCOUNT_OPTIONS,
      name: { type: 'string' },
      role: { type: 'string', default: 'organizer' },
      admin: { type: 'boolean', default: false },
      org: { type: 'string' }
    }
  })
  if (values.password !== undefined) {
    return fail('user create: a password on the command line lands in shell history and `ps`; use --password-stdin, --password-file FILE, or answer the prompt')
  }
  // Named here, before the password prompt, as flags: the schema would call them "email" and "displayName".
  if (values.email === undefined) return fail('user create: --email E is required (the address the account signs in with)')
  if (values.name === undefined) return fail('user create: --name N is required (the name the dashboard shows)')
  try {
    const password = await readPassword({ file: values['password-file'], stdin: values['password-stdin'] })
    const { dataDir, databaseUrl } = installOf(values)
    const user = await admin<{ id: string, email: string, roles: string[] }>(dataDir, databaseUrl, '/users', {
      email: values.email, password, displayName: values.name, role: values.role, admin: values.admin, ...(values.org !== undefined ? { organization: values.org } : {})
    })
    process.stdout.write(`account ${user.email} created (roles: ${user.roles.join(', ')})\n`)
    return 0
  } catch (err) {
    return fail(`user create: ${(err as Error).message}`)
  }
}

async function tokenCreate (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      org: { type: 'string' },
      uses: { type: 'string', default: '1' },
      'expires-in': { type: 'string' },
      'data-dir': { type: 'string' },
      'database-url': { type: 'string' },
      json: { type: 'boolean', default: false }
    }
  })
  const parsed = createTokenInputSchema.safeParse({
    organization: values.org,
    maxUses: Number(values.uses),
    expiresInHours: values['expires-in'] === undefined ? undefined : Number(values['expires-in'])
  })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const flag = { organization: '--org', maxUses: '--uses', expiresInHours: '--expires-in' }[String(issue?.path[0])] ?? 'input'
    return fail(`token create: ${flag}: ${issue?.message}`)
  }
  const { dataDir, databaseUrl } = installOf(values)
  let token: { token: string, organizationName: string, maxUses: number, expiresAt: string | null }
  try {
    token = await admin(dataDir, databaseUrl, '/tokens', parsed.data)
  } catch (err) {
    return fail(`token create: ${(err as Error).message}`)
  }
  const join = joinCommand(dataDir, token.token)
  if (values.json) {
    process.stdout.write(JSON.stringify({ ...token, joinCommand: join }) + '\n')
  } else {
    process.stdout.write(`enrollment token for ${token.organizationName} (uses: ${token.maxUses}${token.expiresAt === null ? '' : `, expires ${token.expiresAt}`}):\n${token.token}\n`)
    process.stdout.write(`join from this checkout, or from a donor machine's checkout after bash scripts/setup.sh:\n  ${join}\n`)
  }
  return 0
}

// `pnpm agent …` / `pnpm coordinator …` run from the repo root; resolve the user's relative
// paths (--golden FILE, --spec FILE, --data-dir) against the directory they typed them in.
if (process.env.INIT_CWD !== undefined && existsSync(process.env.INIT_CWD)) process.chdir(process.env.INIT_CWD)

async function main (argv: string[]): Promise<number> {
  try {
    return await dispatch(argv)
  } catch (err) {
    if (!isParseArgsError(err)) throw err
    const [command, sub] = argv
    const name = command === 'token' || command === 'run' || command === 'user' || command === 'ledger' ? `${command} ${sub ?? ''}`.trim() : command
    return fail(`${name}: ${err.message}\n(see \`barnraise-coordinator help\` for the commands and their flags)`)
  }
}

async function dispatch (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve': return await serve(rest)
    case 'token':
      if (rest[0] === 'create') return await tokenCreate(rest.slice(1))
      return fail('unknown token subcommand; try: token create --org NAME')
    case 'run': return await runCommand(rest)
    case 'user':
      if (rest[0] === 'create') return await userCreate(rest.slice(1))
      if (rest[0] === 'password') return await userPassword(rest.slice(1))
      return fail('unknown user subcommand; try: user create --email E --name N --role organizer, or user password --email E')
    case 'ledger':
      if (rest[0] === 'verify') return await ledgerVerify(rest.slice(1))
      return fail('unknown ledger subcommand; try: ledger verify --run ID')
    case undefined: case 'help': case '--help': case '-h':
      process.stdout.write(USAGE)
      return command === undefined ? 2 : 0
    default:
      return fail(`unknown command "${command}"\n${USAGE}`)
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`barnraise-coordinator: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})

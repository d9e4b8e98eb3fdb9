// `pnpm start`: the coordinator on embedded PGlite, the dashboard, and local agents enrolled
// with a token made for them. The coordinator's state is the checkout's install
// (.data/coordinator), the one every `pnpm coordinator …` command reaches without flags; the
// agents live in .data/agent-N. Ctrl-C stops every process it started.
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { readRunningInstall } from '../coordinator/src/install/install-dir.ts'
import { dataDirOwner } from '../protocol/src/data-dir-lock.ts'
import { onStopSignal } from '../protocol/src/stop-signals.ts'
import { ensureDashboardBuilt } from './dashboard-build.ts'
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    'data-dir': { type: 'string', default: join(root, '.data') },
    'http-port': { type: 'string', default: process.env.PORT ?? '8080' },
    'p2p-port': { type: 'string', default: process.env.P2P_PORT ?? '4001' },
    agents: { type: 'string', default: '2' },
    spec: { type: 'string', default: join(root, 'data', 'demo-run.json') },
    // Passed to `coordinator serve`: what measures validation losses too costly for its event
    // loop (auto: torch when the interpreter has it), and that interpreter. The agents find theirs.
    evaluator: { type: 'string' },
    python: { type: 'string' }
  }
})
const dataDir = values['data-dir']
const agentCount = Number(values.agents)
const children: ChildProcess[] = []
let stopping = false

function say (line: string): void { process.stdout.write(line + '\n') }

/** Turns a structured log line into `level message key=value …` for people watching the demo. */
function readableLog (line: string): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line
  }
  if (typeof entry.msg !== 'string') return line
  const { time: _time, level, component: _component, msg, ...fields } = entry
  const rest = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : String(v)}`).join(' ')
  return `${String(level)} ${msg}${rest === '' ? '' : ' ' + rest}`
}

function run (label: string, args: string[], onLine?: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...args], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  children.push(child)
  createInterface({ input: child.stdout! }).on('line', (line) => { say(`[${label}] ${line}`); onLine?.(line) })
  createInterface({ input: child.stderr! }).on('line', (line) => {
    // While stopping, connections close mid-conversation on purpose: only errors are news.
    if (stopping && !/"level":"error"/.test(line)) return
    process.stderr.write(`[${label}] ${readableLog(line)}\n`)
  })
  child.on('exit', (code, signal) => {
    if (stopping) return
    // Ctrl-C reaches every process of the terminal's group at once: a child that stopped
    // cleanly because of it is not a failure.
    if (code === 0 || signal === 'SIGINT' || signal === 'SIGTERM') { void shutdown(0); return }
    say(`[${label}] exited (${code ?? signal}); stopping the demo`)
    void shutdown(1)
  })
  return child
}

async function shutdown (code: number): Promise<void> {
  if (stopping) return
  stopping = true
  say('start: stopping agents and coordinator')
  // Agents first, so the coordinator sees them leave, then the coordinator.
  const agents = children.slice(1)
  await Promise.all(agents.map(stopChild))
  if (children[0] !== undefined) await stopChild(children[0])
  process.exit(code)
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

onStopSignal(() => { void shutdown(0) })

ensureDashboardBuilt(root, say, 'start')

const coordinatorDir = join(dataDir, 'coordinator')
const running = dataDirOwner(coordinatorDir)
if (running !== undefined) {
  const dashboard = readRunningInstall(coordinatorDir)?.url ?? ''
  say(`Barnraise is already running from this checkout (pid ${running.pid}${dashboard === '' ? '' : `, dashboard ${dashboard}`}).`)
  say(`Use that one, or stop it first: Ctrl-C in its terminal, or kill ${running.pid}.`)
  process.exit(1)
}
let multiaddr = ''
let url = ''
await new Promise<void>((resolve) => {
  const evaluation = [...(values.evaluator !== undefined ? ['--evaluator', values.evaluator] : []), ...(values.python !== undefined ? ['--python', values.python] : [])]
  run('coordinator', ['coordinator/src/cli.ts', 'serve', '--data-dir', coordinatorDir, '--http-port', values['http-port'], '--p2p-port', values['p2p-port'], ...evaluation], (line) => {
    const ma = line.match(/^coordinator multiaddr: (\S+)/)
    if (ma !== null && multiaddr === '') multiaddr = ma[1]!
    const dash = line.match(/^coordinator dashboard: (\S+)/)
    if (dash !== null) { url = dash[1]!; resolve() }
  })
})

for (let i = 1; i <= agentCount; i++) {
  const agentDir = join(dataDir, `agent-${i}`)
  // The local agents share this machine: split its cores between them.
  const threads = String(Math.max(1, Math.floor(availableParallelism() / agentCount)))
  const args = ['node-agent/src/cli.ts', 'join', '--coordinator', multiaddr, '--data-dir', agentDir, '--name', `demo-agent-${i}`, '--threads', threads]
  if (!existsSync(join(agentDir, 'enrollment.json'))) {
    const token = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', 'coordinator/src/cli.ts', 'token', 'create', '--org', 'Demo Lab', '--data-dir', coordinatorDir, '--json'], { cwd: root, encoding: 'utf8', env: { ...process.env, DATABASE_URL: '' } })
    if (token.status !== 0) { process.stderr.write(token.stderr); await shutdown(1) }
    args.push('--token', (JSON.parse(token.stdout) as { token: string }).token)
  }
  run(`agent-${i}`, args)
}

// The demo run: created once, then resumed on every later start (its state is in the database).
if (!existsSync(join(dataDir, 'demo-run-created'))) {
  const created = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', 'coordinator/src/cli.ts', 'run', 'create', '--spec', values.spec, '--start', '--data-dir', coordinatorDir], { cwd: root, encoding: 'utf8', env: { ...process.env, DATABASE_URL: '' } })
  if (created.status !== 0) { process.stderr.write(created.stderr); await shutdown(1) }
  say(`[start] ${created.stdout.trim()}`)
  writeFileSync(join(dataDir, 'demo-run-created'), created.stdout)
}

// A demo account, made once on the coordinator's machine as its admin; it manages the
// demo agents' organization, so the Labs page works for it too.
const loginFile = join(dataDir, 'demo-login.json')
if (!existsSync(loginFile)) {
  const login = { email: 'demo@barnraise.local', password: randomBytes(9).toString('base64url') }
  const created = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', 'coordinator/src/cli.ts', 'user', 'create', '--email', login.email, '--password-stdin', '--name', 'Demo Admin', '--admin', '--org', 'Demo Lab', '--data-dir', coordinatorDir], { cwd: root, encoding: 'utf8', input: login.password, env: { ...process.env, DATABASE_URL: '' } })
  if (created.status !== 0) { process.stderr.write(created.stderr); await shutdown(1) }
  writeFileSync(loginFile, JSON.stringify(login), { mode: 0o600 })
}
const login = JSON.parse(readFileSync(loginFile, 'utf8')) as { email: string, password: string }

say('')
say(`Demo login (admin): ${login.email} / ${login.password}`)
say('Barnraise is running. Open the dashboard:')
say(url)
say('(Ctrl-C stops everything.)')

// A newcomer's first hour, literally: a fresh clone, the README's first command run verbatim
// in a plain shell (`env -i`, a PATH with neither pnpm nor Node 22 on it), then the commands
// the README and the dashboard tell them to type next, against the install that runs.
import { afterAll, beforeAll, describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from './support/processes.ts'

/** The first command of the README's "Two commands" block, without its comment. */
async function readmeCommands (): Promise<{ start: string, test: string }> {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8')
  const block = readme.match(/## Two commands[\s\S]*?```sh\n([\s\S]*?)```/)
  assert.ok(block !== null, 'README has a "Two commands" section with a sh block')
  const lines = block[1]!.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '')
  assert.equal(lines.length, 2, `two commands, got: ${lines.join(' | ')}`)
  return { start: lines[0]!, test: lines[1]! }
}

interface Shell {
  child: ChildProcess
  output: () => string
  waitFor: (pattern: RegExp, timeoutMs: number) => Promise<RegExpMatchArray>
  exited: Promise<number | null>
}

/**
 * Runs `command` in bash under `env -i` with only HOME and PATH, in its own process group so
 * a Ctrl-C can be sent to all of it at once, as a terminal does.
 */
function plainShell (command: string, cwd: string, env: { HOME: string, PATH: string, extra?: Record<string, string> }): Shell {
  const vars = Object.entries({ HOME: env.HOME, PATH: env.PATH, ...env.extra }).map(([k, v]) => `${k}=${v}`)
  const child = spawn('env', ['-i', ...vars, 'bash', '-c', command], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const listeners = new Set<() => void>()
  const onData = (chunk: Buffer): void => { out += chunk.toString('utf8'); for (const l of listeners) l() }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { for (const l of listeners) l(); resolve(code) }) })
  const waitFor = async (pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { listeners.delete(check); reject(new Error(`timed out waiting for ${pattern}; output:\n${out}`)) }, timeoutMs)
    const check = (): void => {
      const m = out.match(pattern)
      if (m !== null) { clearTimeout(timer); listeners.delete(check); resolve(m); return }
      if (child.exitCode !== null) { clearTimeout(timer); listeners.delete(check); reject(new Error(`exited (${child.exitCode}) before ${pattern}; output:\n${out}`)) }
    }
    listeners.add(check)
    check()
  })
  return { child, output: () => out, waitFor, exited }
}

/** Runs a command to completion in the plain shell. */
async function plainRun (command: string, cwd: string, env: { HOME: string, PATH: string, extra?: Record<string, string> }, timeoutMs = 120_000): Promise<{ code: number | null, output: string }> {
  const shell = plainShell(command, cwd, env)
  const timer = setTimeout(() => { killGroup(shell.child, 'SIGKILL') }, timeoutMs)
  const code = await shell.exited
  clearTimeout(timer)
  return { code, output: shell.output() }
}

function killGroup (child: ChildProcess, signal: NodeJS.Signals): void {
  try { process.kill(-child.pid!, signal) } catch {}
}

describe('the README, verbatim, from a plain shell on a fresh clone', { timeout: 600_000 }, () => {
  let work = ''
  let clone = ''
  let env: { HOME: string, PATH: string, extra: Record<string, string> }
  let demo: Shell | undefined
  let agent: Shell | undefined

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'barnraise-readme-'))
    clone = join(work, 'barnraise')
    const cloned = spawnSync('git', ['clone', '--quiet', REPO_ROOT, clone], { encoding: 'utf8' })
    assert.equal(cloned.status, 0, cloned.stderr)
    // A newcomer's home: nothing installed in it, but the machine's package caches linked in,
    // so the test measures our setup rather than the network.
    const home = join(work, 'home')
    await mkdir(join(home, '.local', 'share'), { recursive: true })
    const realHome = process.env.HOME ?? homedir()
    if (existsSync(join(realHome, '.npm'))) await symlink(join(realHome, '.npm'), join(home, '.npm'))
    if (existsSync(join(realHome, '.local', 'share', 'pnpm'))) await symlink(join(realHome, '.local', 'share', 'pnpm'), join(home, '.local', 'share', 'pnpm'))
    // A plain PATH without /usr/local/bin, where an earlier setup may have put pnpm: this
    // shell has the system's old node and no pnpm, as on a fresh machine.
    env = {
      HOME: home,
      PATH: `${home}/.local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      // Ports of the machine's own choosing, so a demo someone left running cannot collide.
      extra: { PORT: '0', P2P_PORT: '0' }
    }
    const bare = spawnSync('env', ['-i', `PATH=${env.PATH}`, 'bash', '-c', 'command -v pnpm || echo none'], { encoding: 'utf8' })
    assert.equal(bare.stdout.trim(), 'none', 'the plain shell starts without pnpm')
  })

  afterAll(async () => {
    for (const shell of [agent, demo]) {
      if (shell === undefined || shell.child.exitCode !== null) continue
      killGroup(shell.child, 'SIGTERM')
      const timer = setTimeout(() => { killGroup(shell.child, 'SIGKILL') }, 15_000)
      await shell.exited
      clearTimeout(timer)
    }
    await rm(work, { recursive: true, force: true })
  })

  test('the first command sets up and serves the dashboard, and setup prints nothing that looks like a failure', async () => {
    const { start } = await readmeCommands()
    assert.equal(start, 'bash scripts/setup.sh && pnpm start')
    demo = plainShell(start, clone, env)
    await demo.waitFor(/setup: done/, 420_000)
    const setupOutput = demo.output().slice(0, demo.output().indexOf('setup: done'))
    for (const line of setupOutput.split('\n')) {
      assert.doesNotMatch(line, /warn|error|fail|deprecat/i, `setup printed a line that looks like a failure: ${line}`)
    }
    const [, url] = await demo.waitFor(/^(http:\/\/127\.0\.0\.1:\d+\/)$/m, 180_000)
    const health = await fetch(new URL('healthz', url))
    assert.equal(health.status, 200)
    assert.match(demo.output(), /Demo login \(admin\): demo@barnraise\.local \/ \S+/)
    assert.doesNotMatch(demo.output(), /WARN|Unsupported engine/, 'pnpm start prints no warnings')
  })

  test('a second pnpm start says one clear thing and changes nothing', async () => {
    const second = await plainRun('pnpm start', clone, env, 60_000)
    assert.equal(second.code, 1, second.output)
    assert.match(second.output, /Barnraise is already running from this checkout \(pid \d+, dashboard http:\/\/127\.0\.0\.1:\d+\/\)/)
    assert.doesNotMatch(second.output, /faultTolerance|at .*\.ts:\d+|Error:/, 'no stack trace or libp2p internals')
    const serve = await plainRun('pnpm coordinator serve', clone, env, 60_000)
    assert.notEqual(serve.code, 0)
    assert.match(serve.output, /a coordinator is already running on \S+\.data\/coordinator \(pid \d+/)
    assert.doesNotMatch(serve.output, /faultTolerance|    at /)
  })

  test('pnpm coordinator token create, with no flags, reaches the running install; its join command enrolls an agent', async () => {
    const made = await plainRun('pnpm coordinator token create', clone, env, 60_000)
    assert.equal(made.code, 0, made.output)
    assert.match(made.output, /enrollment token for Demo Lab/)
    const join = made.output.match(/^\s+(pnpm agent join --coordinator \/ip4\/\S+\/p2p\/\S+ --token brt_\S+)$/m)
    assert.ok(join !== null, `a join command with the coordinator's address and the token:\n${made.output}`)
    // Exactly as printed, in the same plain shell: the default agent data dir is in HOME.
    agent = plainShell(`${join[1]!} --no-train`, clone, env)
    await agent.waitFor(/agent: enrolled as node \S+ of Demo Lab/, 90_000)
    killGroup(agent.child, 'SIGINT')
    assert.equal(await agent.exited, 0, agent.output())
  })

  test('a mistyped run id is explained, not dumped', async () => {
    const paused = await plainRun('pnpm coordinator run pause --run not-a-run', clone, env, 60_000)
    assert.notEqual(paused.code, 0)
    assert.match(paused.output, /no run "not-a-run" on this install; runs here: [0-9a-f]{8} "KJV demo"/)
    assert.doesNotMatch(paused.output, /"code"|regex|\[\s*\{/)
    const listed = await plainRun('pnpm coordinator run list', clone, env, 60_000)
    assert.equal(listed.code, 0, listed.output)
    const id = listed.output.match(/^([0-9a-f-]{36}) {2}\S+/m)
    assert.ok(id !== null, listed.output)
    const byPrefix = await plainRun(`pnpm coordinator run pause --run ${id[1]!.slice(0, 8)}`, clone, env, 60_000)
    assert.equal(byPrefix.code, 0, byPrefix.output)
    assert.match(byPrefix.output, /is paused/)
  })

  test('Ctrl-C ends the demo quietly', async () => {
    killGroup(demo!.child, 'SIGINT')
    const code = await demo!.exited
    const tail = demo!.output().slice(demo!.output().lastIndexOf('Barnraise is running'))
    assert.equal(code, 0, tail)
    assert.doesNotMatch(tail, /ELIFECYCLE|Error|    at |exited \(/, 'no errors, stack traces or failed-exit notices after Ctrl-C')
  })
})

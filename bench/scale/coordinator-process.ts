// A real coordinator process for bench/scale.bench.ts: `coordinator serve` on loopback with
// Postgres and --metrics, its log (one JSON line per event, on stderr) in a file rather than in
// this process's memory, stopped with SIGTERM and then SIGKILL.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT, runCli } from '../../test/support/processes.ts'

export interface BenchCoordinator {
  child: ChildProcess
  pid: number
  url: string
  multiaddr: string
  dataDir: string
  logFile: string
  /** The log's last lines, for a failure to show. */
  logTail: (lines?: number) => string
  createToken: (org: string, uses: number) => Promise<string>
  stop: () => Promise<void>
}

const CLI = 'coordinator/src/cli.ts'

export async function startBenchCoordinator (o: { dataDir: string, databaseUrl: string, args: string[] }): Promise<BenchCoordinator> {
  const logFile = join(o.dataDir, '..', `${o.dataDir.split('/').at(-1)}.log`)
  const logFd = openSync(logFile, 'w')
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', CLI, 'serve', '--data-dir', o.dataDir, '--database-url', o.databaseUrl,
    '--http-port', '0', '--p2p-port', '0', '--metrics', ...o.args], { cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL: o.databaseUrl }, stdio: ['ignore', 'pipe', logFd] })
  closeSync(logFd)
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  const logTail = (lines = 30): string => {
    try { return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n') } catch { return '' }
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 15_000)
    await exited
    clearTimeout(timer)
  }
  let stdout = ''
  try {
    const [multiaddr, url] = await new Promise<[string, string]>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`the coordinator did not start in 60 s:\n${stdout}\n${logTail()}`)) }, 60_000)
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk
        const ma = /^coordinator multiaddr: (\S+)/m.exec(stdout)?.[1]
        const dashboard = /^coordinator dashboard: (\S+)/m.exec(stdout)?.[1]
        if (ma !== undefined && dashboard !== undefined) { clearTimeout(timer); resolve([ma, dashboard]) }
      })
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`the coordinator exited (${code ?? signal}) before it served:\n${stdout}\n${logTail()}`)) })
    })
    return {
      child,
      pid: child.pid!,
      url,
      multiaddr,
      dataDir: o.dataDir,
      logFile,
      logTail,
      createToken: async (org, uses) => {
        const result = await runCli(CLI, ['token', 'create', '--org', org, '--uses', String(uses), '--data-dir', o.dataDir, '--json'], { DATABASE_URL: o.databaseUrl })
        if (result.code !== 0) throw new Error(`token create failed: ${result.output}`)
        return (JSON.parse(result.stdout) as { token: string }).token
      },
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}

import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The repository root, for running the CLIs the way a user would. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface Spawned {
  child: ChildProcess
  /** Everything the process wrote to stdout and stderr so far. */
  output: () => string
  /** Resolves with the first stdout line matching `pattern`; rejects on exit or timeout. */
  waitForLine: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** Resolves with the exit code. */
  exited: Promise<number | null>
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop: (graceMs?: number) => Promise<number | null>
}

/** Runs a project CLI (a .ts file under the repo) with the project's Node 22, capturing output; `wrap` is a command that execs it. */
export function spawnCli (script: string, args: string[], env: Record<string, string> = {}, wrap: string[] = []): Spawned {
  // `wrap` runs it through another command that execs it (e.g. `ip netns exec NS`).
  const command = [...wrap, process.execPath, '--disable-warning=ExperimentalWarning', script, ...args]
  const child = spawn(command[0]!, command.slice(1), {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let stdoutLines: string[] = []
  const waiters = new Set<() => void>()
  let pending = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop() ?? ''
    stdoutLines = stdoutLines.concat(lines)
    for (const w of waiters) w()
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => { for (const w of waiters) w(); resolve(code) })
  })
  const waitForLine = async (pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> => {
    let seen = 0
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for ${pattern}; output:\n${out}`)) }, timeoutMs)
      const check = (): void => {
        for (; seen < stdoutLines.length; seen++) {
          const m = stdoutLines[seen]!.match(pattern)
          if (m !== null) { cleanup(); resolve(m); return }
        }
        if (child.exitCode !== null || child.signalCode !== null) {
          cleanup(); reject(new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${pattern}; output:\n${out}`))
        }
      }
      const cleanup = (): void => { clearTimeout(timer); waiters.delete(check) }
      waiters.add(check)
      check()
    })
  }
  const stop = async (graceMs = 10_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, graceMs)
    const code = await exited
    clearTimeout(timer)
    return code
  }
  return { child, output: () => out, waitForLine, exited, stop }
}

/** Runs a CLI to completion and returns its exit code and output. */
export async function runCli (script: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null, stdout: string, output: string }> {
  const p = spawnCli(script, args, env)
  let stdout = ''
  p.child.stdout!.on('data', (c: string) => { stdout += c })
  const code = await p.exited
  return { code, stdout, output: p.output() }
}

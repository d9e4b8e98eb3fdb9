// The simulated agents of bench/scale.bench.ts: a few forked processes (bench/scale/agent-worker.ts),
// each holding many libp2p nodes. Collects their events and, when stopped, their latencies.
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { REPO_ROOT } from '../../test/support/processes.ts'
import { PROTOCOLS } from './messages.ts'
import { mergeLatencies } from './latency-histogram.ts'
import type { LatencyCounts } from './latency-histogram.ts'
import type { AgentEvent, ParentMessage, Protocol, WorkerInit, WorkerMessage } from './messages.ts'

const WORKER = 'bench/scale/agent-worker.ts'

export interface PoolResult {
  latencies: Record<Protocol, LatencyCounts>
  errors: Record<string, number>
  /** the first message of each kind of error (with its wall-clock ms) */
  firstMessages: Record<string, string>
  /** resident memory of each agent process at the end */
  workerRss: number[]
}

export class AgentPool {
  readonly events: AgentEvent[] = []
  readonly #children: ChildProcess[] = []
  readonly #listeners = new Set<() => void>()
  #fatal: string | undefined
  #stopping = false

  /** Forks `processes` workers sharing `total` agents and waits until every agent has its key, host and payload. */
  static async start (o: Omit<WorkerInit, 'count' | 'firstIndex'> & { total: number, processes: number }): Promise<{ pool: AgentPool, setupMs: number, workerRss: number[] }> {
    const pool = new AgentPool()
    const started = performance.now()
    const rss: number[] = []
    try {
      const per = Math.ceil(o.total / o.processes)
      const ready: Array<Promise<void>> = []
      for (let p = 0, first = 0; first < o.total; p++, first += per) {
        const child = fork(WORKER, [], { cwd: REPO_ROOT, execArgv: ['--disable-warning=ExperimentalWarning'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
        pool.#children.push(child)
        child.on('message', (m: WorkerMessage) => { pool.#onMessage(m) })
        child.once('exit', (code, signal) => {
          if (pool.#stopping) return
          pool.#onMessage({ type: 'fatal', message: `agent process ${p} exited (${code ?? signal}) while its agents were running` })
        })
        ready.push(new Promise<void>((resolve, reject) => {
          const onMessage = (m: WorkerMessage): void => {
            if (m.type === 'ready') { rss[p] = m.rssBytes; child.off('message', onMessage); resolve() }
            if (m.type === 'fatal') reject(new Error(m.message))
          }
          child.on('message', onMessage)
          child.once('exit', (code) => { reject(new Error(`agent process ${p} exited (${code}) during set-up`)) })
        }))
        const init: WorkerInit = { ...o, count: Math.min(per, o.total - first), firstIndex: first }
        child.send({ type: 'init', init } satisfies ParentMessage)
      }
      await Promise.all(ready)
    } catch (err) {
      await pool.kill()
      throw err
    }
    return { pool, setupMs: performance.now() - started, workerRss: rss }
  }

  #onMessage (m: WorkerMessage): void {
    if (m.type === 'events') for (const e of m.events) this.events.push(e)
    else if (m.type === 'fatal') this.#fatal ??= m.message
    else return
    for (const l of this.#listeners) l()
  }

  /** Starts every agent at once: the enrollment storm. */
  go (): void {
    for (const c of this.#children) c.send({ type: 'go' } satisfies ParentMessage)
  }

  /** Resolves when `done()` holds over the events so far; rejects on an agent's fatal error or the timeout. */
  async until (done: (events: AgentEvent[]) => boolean, timeoutMs: number, what: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.#fatal !== undefined) { cleanup(); reject(new Error(`a simulated agent failed: ${this.#fatal}`)); return }
        if (done(this.events)) { cleanup(); resolve() }
      }
      const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`)) }, timeoutMs)
      const cleanup = (): void => { clearTimeout(timer); this.#listeners.delete(check) }
      this.#listeners.add(check)
      check()
    })
  }

  /** Stops every agent and gathers their latencies; kills a process that does not finish in time. */
  async stop (): Promise<PoolResult> {
    this.#stopping = true
    const result: PoolResult = { latencies: { enroll: {}, heartbeat: {}, work: {}, report: {} }, errors: {}, firstMessages: {}, workerRss: [] }
    await Promise.all(this.#children.map(async (child, i) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        process.stderr.write(`agent process ${i} had already exited (${child.exitCode ?? child.signalCode}); its latencies are lost\n`)
        return
      }
      let reported = false
      const done = new Promise<void>((resolve) => {
        child.on('message', (m: WorkerMessage) => {
          if (m.type !== 'done') return
          reported = true
          for (const p of PROTOCOLS) mergeLatencies(result.latencies[p], m.latencies[p])
          for (const [k, n] of Object.entries(m.errors)) result.errors[k] = (result.errors[k] ?? 0) + n
          for (const [k, text] of Object.entries(m.firstMessages)) result.firstMessages[k] ??= text
          result.workerRss.push(m.rssBytes)
          resolve()
        })
        child.once('exit', (code, signal) => {
          if (!reported) process.stderr.write(`agent process ${i} exited (${code ?? signal}) before sending its latencies\n`)
          resolve()
        })
      })
      child.send({ type: 'stop' } satisfies ParentMessage)
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
      await done
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) { resolve(); return }
        const t = setTimeout(() => { child.kill('SIGKILL') }, 5_000)
        child.once('exit', () => { clearTimeout(t); resolve() })
      })
      clearTimeout(timer)
    }))
    return result
  }

  /** Kills every agent process now (failure paths). */
  async kill (): Promise<void> {
    this.#stopping = true
    await Promise.all(this.#children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
      child.kill('SIGKILL')
      await exited
    }))
  }
}

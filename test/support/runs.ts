import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli } from './processes.ts'
import { tempDir } from './cluster.ts'

/** A small, fast run spec for tests: the tiny preset on the demo corpus. */
export function tinyRunSpec (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'test run',
    model: { preset: 'tiny' },
    dataset: { source: 'demo-corpus' },
    recipe: { innerSteps: 8, batchSize: 4, seqLen: 32, innerLr: 0.003, warmupSteps: 2 },
    codec: 'int8',
    rounds: 5,
    minNodes: 1,
    maxNodes: 8,
    roundDeadlineSeconds: 60,
    evalBatches: 2,
    ...overrides
  }
}

/** Creates (and starts) a run through the coordinator CLI, as an organizer who scripts would. */
export async function createRunViaCli (dataDir: string, spec: Record<string, unknown>, env: Record<string, string> = {}): Promise<string> {
  const file = join(await tempDir('spec'), 'run.json')
  await writeFile(file, JSON.stringify(spec))
  const result = await runCli('coordinator/src/cli.ts', ['run', 'create', '--spec', file, '--start', '--data-dir', dataDir], env)
  const m = result.stdout.match(/^run (\S+) /m)
  if (result.code !== 0 || m === null) throw new Error(`run create failed: ${result.output}`)
  return m[1]!
}

export interface ApiRun { id: string, name: string, status: string, round: number, tokensSeen: number }
export interface ApiCheckpoint { round: number, tokensSeen: number, valLoss: number | null, sha256: string, createdAt: string }

/** GETs JSON from the coordinator's plain HTTP API. */
export async function getJson<T> (base: string, path: string): Promise<T> {
  const res = await fetch(new URL(path, base))
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
  return await res.json() as T
}

/** Processes whose output a timed-out wait should show (the tail of each), by name. */
export type ProcessLogs = Record<string, () => string>

/** The last lines of each process's output, headed by its name: what a failing test shows. */
export function logTails (logs: ProcessLogs): string {
  return Object.entries(logs).map(([name, output]) => `\n--- ${name} (last lines) ---\n${output().split('\n').slice(-25).join('\n')}`).join('')
}

/** Polls until `predicate` holds for the run, failing with the last state seen (and the tails of `logs`). */
export async function waitForRun (base: string, runId: string, predicate: (run: ApiRun) => boolean, timeoutMs = 180_000, logs: ProcessLogs = {}): Promise<ApiRun> {
  const deadline = Date.now() + timeoutMs
  let last: ApiRun | undefined
  for (;;) {
    last = (await getJson<ApiRun[]>(base, 'api/runs').catch(() => [])).find((r) => r.id === runId) ?? last
    if (last !== undefined && predicate(last)) return last
    if (last?.status === 'failed') throw new Error(`run failed: ${JSON.stringify(last)}`)
    if (Date.now() > deadline) throw new Error(`timed out waiting on run ${runId}; last seen ${JSON.stringify(last)}${logTails(logs)}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

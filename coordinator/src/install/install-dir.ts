import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { dataDirOwner } from '@barnraise/protocol'

/** The checkout's own install: where `pnpm start` and every `pnpm coordinator …` meet. */
export const DEFAULT_DATA_DIR = fileURLToPath(new URL('../../../.data/coordinator', import.meta.url))

/** --data-dir, else $BARNRAISE_COORDINATOR_DIR, else the checkout's `.data/coordinator`. */
export function coordinatorDataDir (flag: string | undefined): string {
  return flag ?? (process.env.BARNRAISE_COORDINATOR_DIR !== undefined && process.env.BARNRAISE_COORDINATOR_DIR !== '' ? process.env.BARNRAISE_COORDINATOR_DIR : DEFAULT_DATA_DIR)
}

/** What a serving coordinator tells the CLI about itself (`running.json` in its data dir). */
export interface RunningInstall {
  pid: number
  url: string
  multiaddrs: string[]
  database: 'postgres' | 'pglite'
}

function runningPath (dataDir: string): string {
  return join(dataDir, 'running.json')
}

/** Written once the coordinator listens; removed when it stops. */
export function writeRunningInstall (dataDir: string, info: RunningInstall): void {
  writeFileSync(runningPath(dataDir), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 })
}

/** Removes `running.json` (the coordinator is stopping). */
export function clearRunningInstall (dataDir: string): void {
  rmSync(runningPath(dataDir), { force: true })
}

/** The coordinator serving from `dataDir`, when one is alive. */
export function readRunningInstall (dataDir: string): RunningInstall | undefined {
  const owner = dataDirOwner(dataDir)
  if (owner === undefined) return undefined
  try {
    const info = JSON.parse(readFileSync(runningPath(dataDir), 'utf8')) as RunningInstall
    return info.pid === owner.pid ? info : undefined
  } catch {
    return undefined
  }
}

/** Whether `dataDir` holds an embedded database (so opening it does not create a new one). */
export function hasEmbeddedDatabase (dataDir: string): boolean {
  return existsSync(join(dataDir, 'pglite', 'PG_VERSION'))
}

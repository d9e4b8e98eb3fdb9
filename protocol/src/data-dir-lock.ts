import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { CodedError } from './coded-error.ts'

/** What a lock file says about the process holding a data directory. */
export interface DataDirLockOwner {
  pid: number
  /** `coordinator serve`, `agent join`, … — for the message another process prints */
  holder: string
  startedAt: string
}

/** Another live process holds the data directory. */
export class DataDirLockedError extends CodedError<'ERR_DATA_DIR_LOCKED'> {
  readonly owner: DataDirLockOwner
  readonly dir: string
  constructor (dir: string, owner: DataDirLockOwner) {
    super('ERR_DATA_DIR_LOCKED', `${dir} is in use by ${owner.holder} (pid ${owner.pid}, since ${owner.startedAt}); stop that process first, or use another --data-dir`)
    this.dir = dir
    this.owner = owner
  }
}

export interface DataDirLock {
  readonly path: string
  /** Removes the lock file; safe to call twice. */
  release: () => void
}

const LOCK_FILE = 'lock.json'

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: the process exists but belongs to someone else — still a holder.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readOwner (path: string): DataDirLockOwner | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<DataDirLockOwner>
    if (typeof parsed.pid !== 'number' || !Number.isInteger(parsed.pid)) return undefined
    return { pid: parsed.pid, holder: String(parsed.holder ?? 'another process'), startedAt: String(parsed.startedAt ?? '?') }
  } catch {
    return undefined
  }
}

/** The live process holding `dir`, if any (a lock left by a dead process does not count). */
export function dataDirOwner (dir: string): DataDirLockOwner | undefined {
  const owner = readOwner(join(dir, LOCK_FILE))
  return owner !== undefined && isAlive(owner.pid) ? owner : undefined
}

/**
 * Takes `dir` for this process before anything in it is opened (an embedded database, a key),
 * so two processes never share one. A lock left by a process that died is taken over.
 * Throws `DataDirLockedError` when a live process holds it.
 */
export function lockDataDir (dir: string, holder: string): DataDirLock {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, LOCK_FILE)
  const me: DataDirLockOwner = { pid: process.pid, holder, startedAt: new Date().toISOString() }
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number
    try {
      fd = openSync(path, 'wx', 0o600)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = readOwner(path)
      if (owner !== undefined && owner.pid !== process.pid && isAlive(owner.pid)) throw new DataDirLockedError(dir, owner)
      // Stale (its process is gone) or unreadable (a crash mid-write): take it over.
      rmSync(path, { force: true })
      continue
    }
    writeSync(fd, JSON.stringify(me))
    closeSync(fd)
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      if (readOwner(path)?.pid === process.pid) rmSync(path, { force: true })
    }
    process.once('exit', release)
    return { path, release }
  }
  throw new Error(`could not take the lock ${path}: it keeps reappearing; is another process starting in ${dir}?`)
}

import { chmodSync, mkdirSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { CodedError } from '@barnraise/protocol'

/** The node's Ed25519 key in its data directory: its identity, and what signs its reports. */
export const PEER_KEY_FILE = 'peer.key'

/**
 * The folders the agent keeps inside its data directory what is nobody else's business: the
 * blob cache (checkpoints, shards, other volunteers' reports it scores) and each run's state
 * (inner optimizer, momentum, error feedback).
 */
const PRIVATE_FOLDERS = ['blobs', 'runs']

export type DataDirErrorCode =
  /** the directory cannot be made or made private (not a directory, not ours) */
  | 'ERR_DATA_DIR'
  /** the node's key is open to other users of the machine */
  | 'ERR_KEY_EXPOSED'

/** Why the agent will not use a data directory, with what to do about it. */
export class DataDirError extends CodedError<DataDirErrorCode> {}

/** Where the agent keeps its data unless told otherwise: a folder named for it, in the user's data home. */
export function defaultDataDir (): string {
  return join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'barnraise-agent')
}

/** The agent's data directory: --data-dir, else $BARNRAISE_AGENT_DIR, else `defaultDataDir()`. */
export function resolveDataDir (flag: string | undefined): string {
  if (flag !== undefined) return resolve(flag)
  if (process.env.BARNRAISE_AGENT_DIR !== undefined) return resolve(process.env.BARNRAISE_AGENT_DIR)
  return defaultDataDir()
}

/** What `secureDataDir` did: whether it made the directory, and the one warning to show, if any. */
export interface SecuredDataDir {
  created: boolean
  warning?: string
}

const octal = (mode: number): string => (mode & 0o777).toString(8).padStart(4, '0')
const quoted = (path: string): string => `'${path.replace(/'/g, '\'\\\'\'')}'`

/**
 * Makes the data directory private to its owner where that is the agent's to decide: it holds
 * the node's enrollment, its optimizer state and every blob it trains on or scores (other
 * volunteers' reports among them), which other users of the machine have no business reading.
 *
 * - A directory the agent creates now, and the default one (a folder named for the agent, which
 *   only an agent made), become 0700.
 * - A directory that already existed and was named with --data-dir or $BARNRAISE_AGENT_DIR (the
 *   user's home, a shared mount) keeps its mode: changing it would change who may read the
 *   user's other files. The agent makes its own folders in it (`blobs/`, `runs/`) 0700 when it
 *   creates them, and when the directory is open to other users the result carries one warning
 *   saying so and what to do.
 * - An existing directory other users may write is refused (`ERR_DATA_DIR`): they could plant
 *   links where the agent keeps its state.
 * - A peer key other users may read is refused (`ERR_KEY_EXPOSED`), before anything changes: it
 *   signs the node's reports, so whoever read it can act as this node, and whether that happened
 *   is the owner's call (tighten it, or move it aside for a new identity), not the agent's.
 *
 * On Windows, modes say nothing about who may read a file (ACLs do), so it only makes the directory.
 */
export function secureDataDir (dir: string, platform: NodeJS.Platform = process.platform): SecuredDataDir {
  if (platform === 'win32') return { created: mkdirSync(dir, { recursive: true }) !== undefined }
  refuseExposedKey(join(dir, PEER_KEY_FILE))
  let created: boolean
  try {
    // The first directory it made, or undefined when `dir` was there already.
    created = mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined
  } catch (err) {
    throw new DataDirError('ERR_DATA_DIR', `cannot create the data directory ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give --data-dir a directory you may write`, { cause: err })
  }
  if (!statSync(dir).isDirectory()) throw new DataDirError('ERR_DATA_DIR', `the data directory ${dir} is not a directory; give --data-dir a directory`)
  const own = created || resolve(dir) === defaultDataDir()
  refuseWritableByOthers(dir, own)
  if (own) {
    // The mode passed to mkdir is cut by the umask, and an older agent made its default folder 0755.
    makePrivate(dir)
  }
  for (const name of PRIVATE_FOLDERS) privateFolder(join(dir, name))
  if (own) return { created }
  const mode = statSync(dir).mode
  if ((mode & 0o077) === 0) return { created }
  const folders = PRIVATE_FOLDERS.map((name) => ({ name: `${name}/`, mode: statSync(join(dir, name)).mode }))
  const open = folders.filter((f) => (f.mode & 0o077) !== 0)
  const closed = folders.filter((f) => (f.mode & 0o077) === 0)
  return {
    created,
    warning: `the data directory ${dir} is open to other users of this machine (mode ${octal(mode)}); the agent did not create it, so it leaves its mode alone. ` +
      `Other users can see what it holds and read ${['enrollment.json (it names the coordinator and your lab)', ...open.map((f) => `${f.name} (mode ${octal(f.mode)}: cached checkpoints and shards, other volunteers' reports, optimizer state)`)].join(' and ')}; ` +
      `the agent keeps ${['its key 0600', ...closed.map((f) => `${f.name} 0700`)].join(', ')}. ` +
      `If the folder is the agent's alone, run chmod 700 ${quoted(dir)}; otherwise join with --data-dir naming a folder that does not exist yet, which the agent creates private`
  }
}

/**
 * Throws ERR_DATA_DIR when another user may write the directory (and it is not the agent's own,
 * which it makes 0700 next): they could put links of theirs where the agent keeps its state
 * (`blobs/`, `runs/`, the key), and the agent would read and write through them.
 */
function refuseWritableByOthers (dir: string, own: boolean): void {
  if (own) return
  const mode = statSync(dir).mode
  if ((mode & 0o022) === 0) return
  throw new DataDirError('ERR_DATA_DIR', `the data directory ${dir} can be written by other users of this machine (mode ${octal(mode)}): they could replace the agent's files with links of theirs. ` +
    `If the folder is the agent's alone, run chmod 700 ${quoted(dir)}; otherwise join with --data-dir naming a folder that does not exist yet, which the agent creates private`)
}

/** Throws ERR_KEY_EXPOSED when the key file exists and its mode lets group or others in. */
function refuseExposedKey (path: string): void {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return
    throw err
  }
  if ((mode & 0o077) === 0) return
  throw new DataDirError('ERR_KEY_EXPOSED', `the node's key ${path} is open to other users of this machine (mode ${octal(mode)}); whoever read it can sign reports as this node, so the agent will not use it. ` +
    `If nobody else could have read it, run chmod 600 ${quoted(path)} and join again; otherwise move it aside (the agent makes a new identity, which needs a new token from your lab admin) and ask your lab admin to revoke the old node`)
}

function makePrivate (dir: string): void {
  try {
    chmodSync(dir, 0o700)
  } catch (err) {
    throw new DataDirError('ERR_DATA_DIR', `cannot make the data directory ${dir} private (chmod 0700: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give --data-dir a directory you own`, { cause: err })
  }
}

/** Makes `path` a 0700 folder if it does not exist; one that exists (maybe not the agent's) is left as it is. */
function privateFolder (path: string): void {
  try {
    mkdirSync(path, { mode: 0o700 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return
    throw new DataDirError('ERR_DATA_DIR', `cannot create ${path} in the data directory (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give --data-dir a directory you may write`, { cause: err })
  }
  makePrivate(path)
}

import { chmodSync, mkdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

/** The agent's data directory: --data-dir, else $BARNRAISE_AGENT_DIR, else ~/.local/share/barnraise-agent. */
export function resolveDataDir (flag: string | undefined): string {
  if (flag !== undefined) return resolve(flag)
  if (process.env.BARNRAISE_AGENT_DIR !== undefined) return resolve(process.env.BARNRAISE_AGENT_DIR)
  return join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'barnraise-agent')
}

/**
 * Creates the data directory for its owner alone (0700), and tightens one that exists: it holds
 * the node's enrollment, its optimizer state and every blob it trains on or scores (other
 * volunteers' reports among them), which other users of the machine have no business reading.
 * Files inside keep the umask's modes; the directory is what shuts them off.
 */
export function secureDataDir (dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  try {
    chmodSync(dir, 0o700)
  } catch (err) {
    throw new Error(`cannot make the data directory ${dir} private (chmod 0700: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give --data-dir a directory you own`, { cause: err })
  }
}

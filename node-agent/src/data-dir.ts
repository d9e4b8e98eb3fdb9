import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

/** The agent's data directory: --data-dir, else $BARNRAISE_AGENT_DIR, else ~/.local/share/barnraise-agent. */
export function resolveDataDir (flag: string | undefined): string {
  if (flag !== undefined) return resolve(flag)
  if (process.env.BARNRAISE_AGENT_DIR !== undefined) return resolve(process.env.BARNRAISE_AGENT_DIR)
  return join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'barnraise-agent')
}

import { fileURLToPath } from 'node:url'

// The agent (which trains with it) and the coordinator (which evaluates checkpoints with it)
// both start this Python package; where it is and which interpreters may run it are said once, here.

/** The folder that holds the `barnraise_torch` package (this one). */
export const TORCH_EXECUTOR_DIR = fileURLToPath(new URL('./', import.meta.url))

/**
 * The interpreters tried, in order, when none is named: the one given (a flag), else
 * $BARNRAISE_PYTHON alone when set, else python3 on PATH then Debian's /usr/bin/python3.
 */
export function pythonCandidates (explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  if (explicit !== undefined && explicit !== '') return [explicit]
  if (env.BARNRAISE_PYTHON !== undefined && env.BARNRAISE_PYTHON !== '') return [env.BARNRAISE_PYTHON]
  return ['python3', '/usr/bin/python3']
}

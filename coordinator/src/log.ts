/** Structured log lines (one JSON object per line on stderr) with a fixed component name. */
export interface Logger {
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
  child: (component: string) => Logger
}

/** Creates a logger; `BARNRAISE_LOG=silent` mutes it (tests). */
export function createLogger (component: string): Logger {
  const silent = process.env.BARNRAISE_LOG === 'silent'
  const emit = (level: string, msg: string, fields?: Record<string, unknown>): void => {
    if (silent) return
    const line = { time: new Date().toISOString(), level, component, msg, ...fields }
    process.stderr.write(JSON.stringify(line, (_k, v: unknown) => v instanceof Error ? v.message : v) + '\n')
  }
  return {
    info: (msg, fields) => { emit('info', msg, fields) },
    warn: (msg, fields) => { emit('warn', msg, fields) },
    error: (msg, fields) => { emit('error', msg, fields) },
    child: (name) => createLogger(`${component}:${name}`)
  }
}

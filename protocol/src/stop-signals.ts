/**
 * Calls `stop` once on the first SIGINT or SIGTERM. A Ctrl-C typed under `pnpm …` arrives
 * twice (the terminal signals the whole process group and pnpm forwards it), so repeats
 * within `graceMs` are the same request; a Ctrl-C typed again later means "now": the process
 * exits at once. Later SIGTERMs are ignored: a supervisor (`pnpm start`) sends one to a child
 * that may already be shutting down, and cutting that short could leave a database half-written.
 * Returns a function that removes the handlers.
 */
export function onStopSignal (stop: () => void, graceMs = 1500): () => void {
  let first = 0
  const handler = (signal: NodeJS.Signals): void => {
    if (first === 0) {
      first = Date.now()
      stop()
      return
    }
    if (signal === 'SIGINT' && Date.now() - first > graceMs) process.exit(130)
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return () => {
    process.off('SIGINT', handler)
    process.off('SIGTERM', handler)
  }
}

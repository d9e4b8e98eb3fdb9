/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at `maxMs`. */
export function backoffDelay (attempt: number, maxMs = 30_000): number {
  const base = Math.min(maxMs, 500 * 2 ** Math.min(attempt, 16))
  return Math.round(base / 2 + Math.random() * base / 2)
}

/** Sleeps, waking early (resolving false) when the signal aborts. */
export async function sleep (ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false
  return await new Promise((resolve) => {
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(true) }, ms)
    const onAbort = (): void => { clearTimeout(timer); resolve(false) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Says why `fetch(url)` failed in words a user can act on, instead of undici's "fetch failed". */
export function describeFetchFailure (url: URL, err: unknown): string {
  const cause = (err as { cause?: { code?: string, message?: string } }).cause
  const where = `${url.protocol}//${url.host}`
  switch (cause?.code) {
    case 'ECONNREFUSED': return `nothing answers at ${where} (connection refused); is the coordinator running, and is the address and port right?`
    case 'ENOTFOUND': case 'EAI_AGAIN': return `cannot resolve the host "${url.hostname}"; check the address`
    case 'ETIMEDOUT': case 'UND_ERR_CONNECT_TIMEOUT': return `${where} did not answer in time; check the address, and any firewall between here and there`
    case 'ECONNRESET': return `${where} closed the connection; is it a Barnraise coordinator (HTTP, not the libp2p port)?`
  }
  if ((err as Error).name === 'TimeoutError') return `${where} did not answer within 30 s`
  return `could not reach ${where}: ${cause?.message ?? (err as Error).message}`
}

import type { IncomingMessage } from 'node:http'

/**
 * Why an API request that changes something is refused as cross-site, or null when it may go
 * on. Browsers attach the session cookie to cross-site posts, so a mutation must come from
 * our own pages: a JSON body (an HTML form or a "simple" request cannot send one) and, when the
 * browser says where it comes from, our own origin.
 */
export function crossSiteRefusal (req: IncomingMessage, options: OriginOptions = {}): string | null {
  if (req.method !== 'POST') return null
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') return 'API calls that change something must send a JSON body (content-type: application/json)'
  return foreignOriginRefusal(req, options)
}

/** What the origin check needs to know about where the server stands. */
export interface OriginOptions {
  /**
   * Behind a trusted reverse proxy (`--trust-proxy`): the host a browser asked for is the
   * proxy's `X-Forwarded-Host` when it writes one, since many proxies (nginx's default
   * `proxy_pass`) rewrite `Host` to the upstream's address. A page cannot forge the header on a
   * cross-site request (it is not one a browser sends without a preflight we never answer).
   */
  trustProxy?: boolean
}

/** The host the browser addressed: `Host`, or behind a trusted proxy the last `X-Forwarded-Host` it wrote. */
function requestedHost (req: IncomingMessage, options: OriginOptions): string | undefined {
  if (options.trustProxy === true) {
    const forwarded = String(req.headers['x-forwarded-host'] ?? '').split(',').at(-1)!.trim()
    if (forwarded !== '') return forwarded
  }
  return req.headers.host
}

/**
 * Why a request is refused as coming from another site, or null. For uploads (PUT with a raw
 * body): a cross-origin PUT needs a CORS preflight we never answer, and this refuses what a
 * browser labels as foreign anyway.
 */
export function foreignOriginRefusal (req: IncomingMessage, options: OriginOptions = {}): string | null {
  const site = req.headers['sec-fetch-site']
  if (site === 'cross-site' || site === 'same-site') return 'cross-site requests may not change anything here'
  const origin = req.headers.origin
  if (origin !== undefined && origin !== 'null') {
    const host = requestedHost(req, options)
    let originHost: string
    try {
      originHost = new URL(origin).host
    } catch {
      return 'the request names an origin that is not a URL'
    }
    if (host === undefined || originHost !== host) {
      return `requests from ${origin} may not change anything here${options.trustProxy === true ? ` (the request was for ${host ?? 'no host'}: a reverse proxy must pass the host the browser asked for, as Host or X-Forwarded-Host)` : ''}`
    }
  } else if (origin === 'null') {
    return 'requests from an opaque origin may not change anything here'
  }
  return null
}


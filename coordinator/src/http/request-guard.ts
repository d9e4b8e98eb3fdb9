import type { IncomingMessage } from 'node:http'

/**
 * Why an API request that changes something is refused as cross-site, or null when it may go
 * on. Browsers attach the session cookie to cross-site posts, so a mutation must come from
 * our own pages: a JSON body (an HTML form or a "simple" request cannot send one) and, when the
 * browser says where it comes from, our own origin.
 */
export function crossSiteRefusal (req: IncomingMessage): string | null {
  if (req.method !== 'POST') return null
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') return 'API calls that change something must send a JSON body (content-type: application/json)'
  return foreignOriginRefusal(req)
}

/**
 * Why a request is refused as coming from another site, or null. For uploads (PUT with a raw
 * body): a cross-origin PUT needs a CORS preflight we never answer, and this refuses what a
 * browser labels as foreign anyway.
 */
export function foreignOriginRefusal (req: IncomingMessage): string | null {
  const site = req.headers['sec-fetch-site']
  if (site === 'cross-site' || site === 'same-site') return 'cross-site requests may not change anything here'
  const origin = req.headers.origin
  if (origin !== undefined && origin !== 'null') {
    const host = req.headers.host
    let originHost: string
    try {
      originHost = new URL(origin).host
    } catch {
      return 'the request names an origin that is not a URL'
    }
    if (host === undefined || originHost !== host) return `requests from ${origin} may not change anything here`
  } else if (origin === 'null') {
    return 'requests from an opaque origin may not change anything here'
  }
  return null
}

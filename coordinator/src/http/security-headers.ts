import type { ServerResponse } from 'node:http'

/**
 * The dashboard loads only its own scripts, styles, images and API; nothing may frame it
 * (clickjacking) and no response is sniffed into another type. Styles allow inline because
 * React sets `style` attributes (chart bars, progress widths).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join('; ')

/** Sets the headers every response carries, before anything else writes; `secure` when served over HTTPS (HSTS). */
export function applySecurityHeaders (res: ServerResponse, secure = false): void {
  // Once a browser has the dashboard over HTTPS, it never asks for it over plain HTTP again.
  if (secure) res.setHeader('strict-transport-security', 'max-age=31536000')
  res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY)
  res.setHeader('x-content-type-options', 'nosniff')
  res.setHeader('x-frame-options', 'DENY')
  // Invitation and setup links carry codes in their query; never leak them to other sites.
  res.setHeader('referrer-policy', 'no-referrer')
}

/** Parses a Cookie header into name → value (first wins). */
export function parseCookies (header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>()
  if (header === undefined) return cookies
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    const name = part.slice(0, eq).trim()
    if (name === '' || cookies.has(name)) continue
    try {
      cookies.set(name, decodeURIComponent(part.slice(eq + 1).trim()))
    } catch {
      // A malformed value is just not a cookie we can use.
    }
  }
  return cookies
}

/** A Set-Cookie value for the session: httpOnly, SameSite=Lax, whole site; `Secure` when served over HTTPS. */
export function sessionCookie (name: string, value: string, expiresAt: Date | null, secure = false): string {
  const parts = [`${name}=${encodeURIComponent(value)}`, 'Path=/', 'HttpOnly', 'SameSite=Lax']
  if (secure) parts.push('Secure')
  parts.push(expiresAt === null ? 'Max-Age=0' : `Expires=${expiresAt.toUTCString()}`)
  return parts.join('; ')
}

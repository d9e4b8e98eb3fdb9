/**
 * The path to go to after signing in, when it stays on this site; null otherwise (no open
 * redirects: `//host` and `/\host` lead elsewhere, since browsers read `\` as `/`).
 */
export function safeNext (next: string | null): string | null {
  return next !== null && /^\/(?![/\\])/.test(next) && !/[\\\u0000-\u001f]/.test(next) ? next : null
}

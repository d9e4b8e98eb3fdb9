/**
 * One field of RFC 4180 CSV, safe to open in a spreadsheet: text that one would run as a
 * formula (`=`, `+`, `-`, `@`, tab or CR first; node, lab, file and document names come from
 * other people) gets a leading apostrophe. Numbers are written as they are, and so is text
 * with `verbatim` (hashes, signatures, canonical JSON: a verifier needs their exact bytes).
 */
export function csvField (value: string | number | null | undefined, options: { verbatim?: boolean } = {}): string {
  if (value === null || value === undefined) return ''
  let text = String(value)
  if (typeof value === 'string' && options.verbatim !== true && /^[=+\-@\t\r]/.test(text)) text = `'${text}`
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

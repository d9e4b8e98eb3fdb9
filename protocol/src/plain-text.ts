import { z } from 'zod'

/*
 * Text a node sends that people read: its name, its hardware, why it declined a unit. It ends up
 * on public pages, in the ledger and its exports, and in organizers' terminals, so it must be
 * plain text. Refused:
 * - C0 controls (U+0000–U+001F) and DEL and C1 controls (U+007F–U+009F): NUL (Postgres cannot
 *   store it), escape sequences that recolour or rewrite a terminal, CR that overprints a line,
 *   line breaks that fake a new row in a listing;
 * - bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069), which make text display
 *   in another order than it reads ("admin\u202Egnp.exe" shows as "adminexe.png");
 * - unpaired UTF-16 surrogates (U+D800–U+DFFF alone), which are not Unicode: Postgres refuses
 *   them in JSON and stores U+FFFD for them in text, so a ledger reason holding one would no
 *   longer hash to what was chained.
 * Multi-line text (a decline's message) may hold line feeds and tabs: an executor's error can
 * span lines (a Python exception with its hint, a child's last output), and neither character
 * reorders or hides text; HTML shows them as spaces, CSV quotes them and logs escape them. CR is
 * still refused there (it overprints in a terminal); an agent writes a line break as a line feed.
 * Letters of every script, emoji and the invisible direction marks U+200E/U+200F (which reorder
 * nothing past themselves) pass.
 */

/** Whether line feeds and tabs are allowed: names, codes and hardware are single-line. */
export type TextLines = 'single-line' | 'multi-line'

/** Any character refused somewhere (with `u`, a surrogate range matches only unpaired ones); the exact rule is in `refused`. */
const SUSPECT = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ud800-\udfff]/u

const NAMES: Readonly<Record<number, string>> = {
  0x00: 'NUL', 0x07: 'bell', 0x08: 'backspace', 0x09: 'tab', 0x0a: 'line feed', 0x0b: 'vertical tab', 0x0c: 'form feed',
  0x0d: 'carriage return', 0x1b: 'escape', 0x7f: 'delete', 0x85: 'next line',
  0x202a: 'left-to-right embedding', 0x202b: 'right-to-left embedding', 0x202c: 'pop directional formatting',
  0x202d: 'left-to-right override', 0x202e: 'right-to-left override',
  0x2066: 'left-to-right isolate', 0x2067: 'right-to-left isolate', 0x2068: 'first strong isolate', 0x2069: 'pop directional isolate'
}

function isBidi (cp: number): boolean {
  return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)
}

/** A code point iteration yields only for a surrogate without its pair. */
function isSurrogate (cp: number): boolean {
  return cp >= 0xd800 && cp <= 0xdfff
}

function refused (cp: number, lines: TextLines): boolean {
  if (cp <= 0x1f) return !(lines === 'multi-line' && (cp === 0x09 || cp === 0x0a))
  return (cp >= 0x7f && cp <= 0x9f) || isBidi(cp) || isSurrogate(cp)
}

const hex = (cp: number): string => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`

/**
 * Why `text` is not plain text of the kind `lines` allows (the first refused character, where
 * it is and what is refused), or undefined when it is.
 */
export function plainTextProblem (text: string, lines: TextLines = 'single-line'): string | undefined {
  if (!SUSPECT.test(text)) return undefined
  let position = 0
  for (const ch of text) {
    position++
    const cp = ch.codePointAt(0)!
    if (!refused(cp, lines)) continue
    const kind = isBidi(cp) ? 'a bidirectional formatting character' : isSurrogate(cp) ? 'half of a surrogate pair, not valid Unicode' : 'a control character'
    const name = NAMES[cp] === undefined ? kind : `${NAMES[cp]}, ${kind}`
    const allowed = lines === 'multi-line' ? '; line feeds (\\n) and tabs are allowed' : ''
    return `must be plain text: character ${position} is ${hex(cp)} (${name}). Control characters (U+0000–U+001F, U+007F–U+009F), ` +
      `bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) and unpaired surrogates are refused${allowed}; remove them or replace them with spaces`
  }
  return undefined
}

/**
 * A string schema for node-supplied text: `min` to `max` characters, and plain text (see
 * `plainTextProblem`). Single-line unless `lines` says otherwise; `trim` trims it first, so the
 * bounds count what is kept (a name of spaces is empty).
 */
export function plainTextSchema (options: { max: number, min?: number, lines?: TextLines, trim?: boolean }): z.ZodString {
  const lines = options.lines ?? 'single-line'
  const base = options.trim === true ? z.string().trim() : z.string()
  return base.min(options.min ?? 0).max(options.max).superRefine((text, ctx) => {
    const problem = plainTextProblem(text, lines)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: text })
  })
}

/**
 * What an honest agent sends for text it did not choose (a CPU model, a GPU name, an error
 * message): each refused character (an unpaired surrogate included) becomes a space, and in
 * multi-line text CR LF and a lone CR become a line feed. The result always passes
 * `plainTextProblem` with the same `lines`, and is no longer than `text`.
 */
export function toPlainText (text: string, lines: TextLines = 'single-line'): string {
  if (!SUSPECT.test(text)) return text
  const normalized = lines === 'multi-line' ? text.replace(/\r\n?/g, '\n') : text
  let out = ''
  for (const ch of normalized) out += refused(ch.codePointAt(0)!, lines) ? ' ' : ch
  return out
}

/** Whether `text` shows nothing: only whitespace and invisible (default-ignorable) characters. */
export function readsAsNothing (text: string): boolean {
  return text.replace(/[\s\p{Default_Ignorable_Code_Point}]/gu, '') === ''
}

/**
 * A name people read on public pages (a run's, a dataset's): trimmed, 1 to `max` characters,
 * single-line plain text, and showing something. `label` starts each message ("run name must
 * be plain text: …"), `missing` is what an empty one is told.
 */
export function publicNameSchema (label: string, options: { max: number, missing: string }) {
  return z.string().trim().min(1, options.missing).max(options.max).superRefine((name, ctx) => {
    // An empty one was told `missing` already.
    if (name === '') return
    const problem = plainTextProblem(name)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `${label} ${problem}`, input: name })
    else if (readsAsNothing(name)) ctx.addIssue({ code: 'custom', message: `${label} shows nothing: it holds only spaces and invisible characters; ${options.missing}`, input: name })
  })
}

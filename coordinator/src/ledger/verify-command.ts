import { parseArgs } from 'node:util'
import { readFile, stat } from 'node:fs/promises'
import { LedgerFormatError, checkLedgerHead, parseLedgerHeads, parseLedgerJson, verifyLedger } from '@barnraise/protocol'
import type { LedgerEntry, SignedLedgerHead } from '@barnraise/protocol'
import { describeFetchFailure } from '../http/fetch-failure.ts'

const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

type Fetched = { ok: true, text: string } | { ok: false, message: string }

const MIB = 1024 * 1024

/**
 * The most `ledger verify` reads of one answer or file. The coordinator it checks is the party
 * it does not trust: an endless or giant answer must end in a message, not exhaust memory or
 * throw mid-read. About the longest string JavaScript holds, so no ledger that could be
 * verified at all is turned away.
 */
export const MAX_LEDGER_BYTES = 500 * MIB

function tooLarge (what: string, maxBytes: number): string {
  return `${what} is larger than ${Math.round(maxBytes / MIB)} MiB, the most ledger verify reads; check that --from names a Barnraise coordinator or ledger.json`
}

/** Strict UTF-8: bytes that are not would read as U+FFFD here and as something else elsewhere. */
function decodeUtf8 (bytes: Uint8Array, what: string): Fetched {
  try {
    return { ok: true, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) }
  } catch (err) {
    if (!(err instanceof TypeError)) return { ok: false, message: `${what} is too large to hold in memory as text (${(err as Error).message})` }
    return { ok: false, message: `${what} is not UTF-8 text; no coordinator writes that, so it was altered: fetch it again` }
  }
}

/** The body, at most `maxBytes` of it, as text; a body cut short or too long is a message, not a throw. */
async function readBody (res: Response, url: URL, maxBytes: number): Promise<Fetched> {
  const declared = Number(res.headers.get('content-length') ?? 0)
  if (res.body === null) return { ok: true, text: '' }
  const reader = res.body.getReader()
  if (declared > maxBytes) {
    await reader.cancel().catch(() => {})
    return { ok: false, message: tooLarge(String(url), maxBytes) }
  }
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (let part = await reader.read(); !part.done; part = await reader.read()) {
      size += part.value.byteLength
      if (size > maxBytes) {
        await reader.cancel().catch(() => {})
        return { ok: false, message: tooLarge(String(url), maxBytes) }
      }
      chunks.push(part.value)
    }
  } catch (err) {
    const why = (err as Error).name === 'TimeoutError' ? 'it took more than 30 s' : 'the connection broke'
    return { ok: false, message: `${url} stopped sending before the end (${why}); try again, or save it with curl and pass the file with --from FILE` }
  }
  return decodeUtf8(Buffer.concat(chunks, size), String(url))
}

async function fetchText (url: URL, from: string, run: string, maxBytes: number): Promise<Fetched> {
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(30_000) })
  } catch (err) {
    return { ok: false, message: describeFetchFailure(url, err) }
  }
  if (!res.ok) await res.body?.cancel().catch(() => {})
  if (res.status === 404) return { ok: false, message: `${from} has no run ${run} (check the id, or --from points at another coordinator)` }
  if (!res.ok) return { ok: false, message: `${url} answered HTTP ${res.status}; is --from a Barnraise coordinator?` }
  return await readBody(res, url, maxBytes)
}

async function readText (path: string, what: string, maxBytes: number): Promise<Fetched> {
  let bytes: Buffer
  try {
    const size = (await stat(path)).size
    if (size > maxBytes) return { ok: false, message: tooLarge(path, maxBytes) }
    bytes = await readFile(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return { ok: false, message: `cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}; pass ${what}` }
  }
  return decodeUtf8(bytes, path)
}

/**
 * `ledger verify`: checks a run's ledger offline (chain, signatures, one credit per unit) and
 * every signed head it is given or the coordinator publishes. Returns the exit code: 0 good,
 * 1 the ledger fails, 2 bad usage or unreadable input.
 */
export async function ledgerVerifyCommand (argv: string[], say: (line: string) => void, fail: (message: string) => number, limits: { maxBytes?: number } = {}): Promise<number> {
  const maxBytes = limits.maxBytes ?? MAX_LEDGER_BYTES
  const { values } = parseArgs({
    args: argv,
    options: {
      run: { type: 'string' },
      from: { type: 'string', default: 'http://127.0.0.1:8080/' },
      head: { type: 'string' },
      coordinator: { type: 'string' }
    }
  })
  if (values.run === undefined) return fail('ledger verify: --run ID is required (the run id the dashboard and `pnpm coordinator run list` show)')
  if (!RUN_ID.test(values.run)) {
    return fail(`ledger verify: "${values.run}" is not a run id; a run id looks like 3f2b6c1e-8d7a-4c55-9e61-0b2f4a9c7d13 (see the run's page or \`pnpm coordinator run list\`)`)
  }
  const run = values.run.toLowerCase()
  const remote = /^https?:\/\//.test(values.from)
  const base = values.from.endsWith('/') ? values.from : values.from + '/'
  const ledgerText = remote
    ? await fetchText(new URL(`api/runs/${encodeURIComponent(run)}/ledger.json`, base), values.from, run, maxBytes)
    : await readText(values.from, 'a coordinator URL (http://…) or a ledger.json file', maxBytes)
  if (!ledgerText.ok) return fail(`ledger verify: ${ledgerText.message}`)

  let entries: LedgerEntry[]
  const heads: Array<{ head: SignedLedgerHead, source: string }> = []
  try {
    entries = parseLedgerJson(ledgerText.text)
    if (values.head !== undefined) {
      const saved = await readText(values.head, 'a file of ledger heads you saved (ledger-heads.json)', maxBytes)
      if (!saved.ok) return fail(`ledger verify: ${saved.message}`)
      for (const head of parseLedgerHeads(saved.text)) heads.push({ head, source: values.head })
    }
    if (remote) {
      const url = new URL(`api/runs/${encodeURIComponent(run)}/ledger-heads.json`, base)
      const published = await fetchText(url, values.from, run, maxBytes)
      if (!published.ok) return fail(`ledger verify: ${published.message}`)
      for (const head of parseLedgerHeads(published.text)) heads.push({ head, source: 'the coordinator' })
    }
  } catch (err) {
    if (err instanceof LedgerFormatError) return fail(`ledger verify: ${err.message}`)
    throw err
  }

  const verdict = await verifyLedger(run, entries)
  if (!verdict.ok) {
    say(`ledger FAILED at row seq=${verdict.seq} (position ${verdict.index + 1} of ${verdict.rows}): ${verdict.reason}`)
    return 1
  }
  // Heads from a file must come from the same coordinator as each other (or the one named).
  const signer = values.coordinator ?? heads[0]?.head.coordinator
  for (const { head, source } of heads) {
    const problem = await checkLedgerHead(run, entries, head, signer)
    if (problem !== undefined) {
      say(`ledger FAILED against the head for round ${head.round} from ${source}: ${problem}`)
      return 1
    }
  }
  const latest = heads.reduce<SignedLedgerHead | undefined>((a, { head }) => (a === undefined || head.round > a.round ? head : a), undefined)
  // Without a head the chain only agrees with itself: say so, or "OK" reads as "the coordinator vouched for it".
  const noHead = values.coordinator !== undefined
    ? `; no signed head was checked, so coordinator ${values.coordinator} vouched for none of it (a run publishes heads as its rounds close; pass --head FILE with heads you saved)`
    : '; no signed head was checked: the chain agrees with itself, and an operator who rewrote it all would pass (pass --head FILE with heads you saved)'
  say(`ledger OK: ${verdict.rows} rows, hash chain and signatures verify` +
    (latest === undefined ? noHead : `; ${heads.length} signed head(s) match (latest round ${latest.round}, signed by coordinator ${latest.coordinator})`))
  return 0
}

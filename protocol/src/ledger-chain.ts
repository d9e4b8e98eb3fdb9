import type { PrivateKey } from '@libp2p/interface'
import { z } from 'zod'
import { CodedError } from './coded-error.ts'
import { verifyPeerSignature } from './peer-signature.ts'
import { MAX_CPU_CORES } from './hardware.ts'
import { MAX_REPORT_DEVICES, parseReportMetadata, verifyReportSignature } from './signed-report.ts'

/** One ledger row as exported (ledger.json) and as hashed. */
export interface LedgerEntry {
  seq: number
  runId: string
  round: number
  nodeId: string | null
  peerId: string
  organizationId: string | null
  assignmentId: string | null
  tokens: number
  computeSeconds: number
  outcome: 'accepted' | 'refused'
  reason: string | null
  /** canonical JSON of the signed report metadata (accepted rows always have it) */
  metadata: string | null
  /** base64 Ed25519 signature by the node over `metadata` */
  signature: string | null
  prevHash: string
  hash: string
  /**
   * When the coordinator wrote the row, ISO-8601 UTC with milliseconds; it decides which pledges
   * the row counts toward. Hashed from ledger v6 on (see `ledgerEntryHash`); absent only in
   * rows built by hand, never in an export.
   */
  createdAt?: string
  /**
   * What trained the report (typescript, torch-cpu, torch-cuda), as the node signed it; null or
   * absent on rows from before the field existed and on refusals that did not say.
   */
  executor?: string | null
  /**
   * How many devices trained the report together, as the node signed it (report v3); null or
   * absent for one. Not hashed on its own: the signed metadata it is copied from is, and
   * `verifyLedger` checks that the two agree.
   */
  devices?: number | null
  /**
   * How many of `devices` the coordinator credits, from the throughput the row shows (see the
   * coordinator's `ledger/device-credit.ts`): 1 to `devices`; null or absent when the report
   * named no device count. Hashed, not signed: the coordinator's judgement, not the node's claim.
   */
  creditedDevices?: number | null
  /**
   * CPU cores the coordinator credits a row counted as CPU time, from the throughput it shows
   * (the node's claimed core count, at most: see the coordinator's `ledger/device-credit.ts`);
   * 0 for a row counted as GPU time; null or absent on refused rows and rows from before the
   * field. Hashed, not signed: the coordinator's judgement, fixed when the row is written, so a
   * node cannot change its past hours by re-joining with another hardware profile.
   */
  creditedCores?: number | null
  /**
   * The loss the report removed on held-out data no node trained on (positive helps), as the
   * coordinator measured it when the run screens reports; null or absent when not scored.
   * Hashed, not signed: it is the coordinator's measurement, not the node's claim.
   */
  score?: number | null
}

/** What a row's hash covers: every field but seq and the hash (createdAt only from ledger v6 on). */
export type LedgerEntryFields = Omit<LedgerEntry, 'seq' | 'hash'>

const encoder = new TextEncoder()

async function sha256Hex (text: string): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', encoder.encode(text))
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

/** The prev_hash of a run's first row. */
export async function ledgerGenesisHash (runId: string): Promise<string> {
  return await sha256Hex(`barnraise-ledger-genesis:${runId}`)
}

/**
 * A row's time exactly as the coordinator hashes and exports it: ISO-8601 UTC with milliseconds,
 * the one spelling `Date.prototype.toISOString` gives an instant, so one instant has one hash.
 */
export function isLedgerTime (value: unknown): value is string {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(value)) return false
  const at = new Date(value)
  // A well-shaped string can still name no instant (February 30th) or be read as another.
  return !Number.isNaN(at.getTime()) && at.toISOString() === value
}

/** The fields every hash version starts with, in order. */
function baseFields (e: LedgerEntryFields): unknown[] {
  return [
    e.runId, e.round, e.nodeId, e.peerId, e.organizationId, e.assignmentId,
    e.tokens, e.computeSeconds, e.outcome, e.reason, e.metadata, e.signature, e.prevHash
  ]
}

/** The hash of a row without its time: the rule for rows written before ledger v6. */
async function untimedEntryHash (e: LedgerEntryFields): Promise<string> {
  const fields = baseFields(e)
  const executor = e.executor ?? null
  const score = e.score ?? null
  const credited = e.creditedDevices ?? null
  const cores = e.creditedCores ?? null
  if (cores !== null) return await sha256Hex(JSON.stringify(['barnraise-ledger-v5', ...fields, executor, score, credited, cores]))
  if (credited !== null) return await sha256Hex(JSON.stringify(['barnraise-ledger-v4', ...fields, executor, score, credited]))
  if (score !== null) return await sha256Hex(JSON.stringify(['barnraise-ledger-v3', ...fields, executor, score]))
  return await sha256Hex(JSON.stringify(executor === null ? ['barnraise-ledger-v1', ...fields] : ['barnraise-ledger-v2', ...fields, executor]))
}

/**
 * The hash that chains a row: sha256 over its fields in a fixed order, including the previous
 * hash. A row with a `createdAt` hashes as `barnraise-ledger-v6`: executor, score, credited
 * devices and credited cores (each or null), then the time as ISO-8601 UTC with milliseconds,
 * so the time that decides which pledge a row counts toward is pinned like the rest. Without a
 * `createdAt` the older rules hold, so old chains still verify: a row with an executor hashes as
 * `barnraise-ledger-v2` with the executor last, else as `barnraise-ledger-v1`; a scored row as
 * `barnraise-ledger-v3`, with the executor (or null) and then the score; a row with a credited
 * device count as `barnraise-ledger-v4`, with executor, score (or null) and the count; a row with
 * credited CPU cores as `barnraise-ledger-v5`, with executor, score, device count (each or null)
 * and the cores.
 */
export async function ledgerEntryHash (e: LedgerEntryFields): Promise<string> {
  if (e.createdAt === undefined) return await untimedEntryHash(e)
  return await sha256Hex(JSON.stringify(['barnraise-ledger-v6', ...baseFields(e), e.executor ?? null, e.score ?? null, e.creditedDevices ?? null, e.creditedCores ?? null, e.createdAt]))
}

export type LedgerVerdict =
  | { ok: true, rows: number }
  | { ok: false, rows: number, seq: number, index: number, reason: string }

/**
 * Verifies a run's ledger end to end, offline: the chain of hashes from the genesis, each
 * row's own hash, and for accepted rows the node's signature and that the signed metadata
 * says what the row says, and that no work unit was accepted twice. Names the first bad row.
 *
 * A row's hash may cover its time (v6) or not (v1 to v5, rows written before v6): a row counts
 * as v6 when its hash matches with its `createdAt`, else it must match the older rule. Once a
 * run has a v6 row every later row must be v6, since a coordinator writes nothing else from
 * then on. Moving a v6 row's time changes its hash, so the row fails here unless it is re-hashed
 * and every later row re-chained; re-hashing it the old way, to leave its time out, is refused
 * when an earlier row is v6. What this cannot see on its own: a rewrite from the run's first v6
 * row on (or of the whole run) down to v5, with times moved and every later row re-chained,
 * agrees with itself like any consistent rewrite. Every hash from that row on then differs, so a
 * kept head signed after it catches it (`checkLedgerHead`); rows older than v6 never pinned
 * their time, and a head pins only their other fields.
 */
export async function verifyLedger (runId: string, entries: LedgerEntry[]): Promise<LedgerVerdict> {
  let prev = await ledgerGenesisHash(runId)
  let lastSeq = 0
  const acceptedUnits = new Set<string>()
  // The first row whose hash covers its time (v6), once there is one.
  let timedSince: number | undefined
  for (const [index, e] of entries.entries()) {
    const bad = (reason: string): LedgerVerdict => ({ ok: false, rows: entries.length, seq: e.seq, index, reason })
    if (e.runId !== runId) return bad(`row belongs to run ${e.runId}`)
    // seq is not hashed, yet heads, statements and readers name rows by it: the coordinator
    // numbers rows in chain order, so any other numbering was made after the fact.
    if (!Number.isSafeInteger(e.seq) || e.seq <= lastSeq) return bad(`seq ${String(e.seq)} does not follow seq ${lastSeq} (rows were renumbered or reordered)`)
    lastSeq = e.seq
    if (e.outcome !== 'accepted' && e.outcome !== 'refused') return bad(`outcome ${JSON.stringify(e.outcome)} is neither accepted nor refused`)
    if (e.prevHash !== prev) return bad('prev_hash does not match the previous row (a row was removed, reordered or inserted)')
    // A present time must be the one spelling the coordinator writes: any other could hash
    // differently from the instant a reader takes it for.
    if (e.createdAt !== undefined && !isLedgerTime(e.createdAt)) return bad(`createdAt ${JSON.stringify(e.createdAt)} is not an ISO-8601 UTC time with milliseconds (like 2026-11-23T10:00:00.000Z)`)
    if (e.createdAt !== undefined && await ledgerEntryHash(e) === e.hash) {
      timedSince ??= e.seq
    } else if (await untimedEntryHash(e) !== e.hash) {
      if (timedSince === undefined) return bad('hash does not match the row\'s contents (the row was altered)')
      if (e.createdAt === undefined) return bad(`hash does not match the row's contents, and the row has no createdAt, which every row from seq=${timedSince} on hashes (the row was altered, or its time left out of the export)`)
      return bad(`hash does not match the row's contents and its createdAt ${e.createdAt} (the row was altered, or its time moved)`)
    } else if (timedSince !== undefined) {
      return bad(`the row's hash leaves out its time (a hash version before barnraise-ledger-v6), yet row seq=${timedSince} before it hashed its time, and a coordinator writes v6 from then on: the row was re-hashed, perhaps to move its createdAt`)
    }
    if (e.outcome === 'accepted') {
      if (e.metadata === null || e.signature === null) return bad('accepted row lacks signed metadata')
      if (!await verifyReportSignature(e.peerId, e.metadata, e.signature)) return bad('node signature does not verify')
      const m = parseReportMetadata(e.metadata)
      if (m === undefined) return bad('metadata is not well-formed canonical report metadata (v1, v2 or v3 JSON)')
      if (m.runId !== e.runId || m.round !== e.round || m.assignmentId !== e.assignmentId ||
        m.peerId !== e.peerId || m.tokens !== e.tokens || m.computeSeconds !== e.computeSeconds ||
        (m.executor ?? null) !== (e.executor ?? null) || (e.devices !== undefined && (m.devices ?? null) !== e.devices)) {
        return bad('row disagrees with what the node signed')
      }
      const credited = e.creditedDevices ?? null
      if (credited !== null && !(Number.isInteger(credited) && credited >= 1 && credited <= (m.devices ?? 1))) {
        return bad(`credits ${credited} devices where the node signed ${m.devices ?? 1}`)
      }
      const cores = e.creditedCores ?? null
      if (cores !== null && !(Number.isInteger(cores) && cores >= 0 && cores <= MAX_CPU_CORES)) return bad(`credits ${cores} CPU cores (0 for GPU time, else 1 to ${MAX_CPU_CORES})`)
      if (acceptedUnits.has(m.assignmentId)) return bad(`work unit ${m.assignmentId} is credited twice (a second accepted row for one assignment)`)
      acceptedUnits.add(m.assignmentId)
    }
    prev = e.hash
  }
  return { ok: true, rows: entries.length }
}

/** A ledger export or head that cannot be read as one. */
export class LedgerFormatError extends CodedError<'ERR_MALFORMED_LEDGER'> {}

const sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/)
const nullableText = (max: number): z.ZodNullable<z.ZodString> => z.string().max(max).nullable()

/** One exported ledger row, as `ledger.json` carries it. */
export const ledgerEntrySchema = z.object({
  seq: z.number().int().positive(),
  runId: z.string().max(64),
  round: z.number().int().nonnegative(),
  nodeId: nullableText(64),
  peerId: z.string().min(1).max(128),
  organizationId: nullableText(64),
  assignmentId: nullableText(64),
  tokens: z.number().finite(),
  computeSeconds: z.number().finite(),
  outcome: z.enum(['accepted', 'refused']),
  reason: nullableText(4096),
  metadata: nullableText(65_536),
  signature: nullableText(200),
  prevHash: sha256HexSchema,
  hash: sha256HexSchema,
  createdAt: z.string().max(64).refine(isLedgerTime, 'must be an ISO-8601 UTC time with milliseconds, as the coordinator writes it (like 2026-11-23T10:00:00.000Z)').optional(),
  executor: nullableText(32).optional(),
  devices: z.number().int().min(2).max(MAX_REPORT_DEVICES).nullable().optional(),
  creditedDevices: z.number().int().min(1).max(MAX_REPORT_DEVICES).nullable().optional(),
  creditedCores: z.number().int().min(0).max(MAX_CPU_CORES).nullable().optional(),
  score: z.number().finite().nullable().optional()
})

/**
 * The first key that one object of JSON `text` (text JSON.parse accepts) names twice, or
 * undefined. JSON.parse keeps the last of the two, other readers the first or refuse the file,
 * so an export carrying both could verify here and credit someone else in a spreadsheet;
 * JSON.stringify never writes one.
 */
export function repeatedJsonKey (text: string): string | undefined {
  // One entry per open object (its keys so far) or array (null).
  const open: Array<Set<string> | null> = []
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      let end = i + 1
      let escaped = false
      for (; end < text.length && text.charCodeAt(end) !== 0x22; end++) {
        if (text.charCodeAt(end) === 0x5c) { escaped = true; end++ }
      }
      const keys = open[open.length - 1]
      if (expectKey && keys !== undefined && keys !== null) {
        // "a" and "\u0061" are one key to every reader.
        const key = escaped ? JSON.parse(text.slice(i, end + 1)) as string : text.slice(i + 1, end)
        if (keys.has(key)) return key
        keys.add(key)
        expectKey = false
      }
      i = end
    } else if (c === 0x7b) {
      open.push(new Set())
      expectKey = true
    } else if (c === 0x5b) {
      open.push(null)
    } else if (c === 0x7d || c === 0x5d) {
      open.pop()
      expectKey = false
    } else if (c === 0x2c) {
      const top = open[open.length - 1]
      expectKey = top !== undefined && top !== null
    }
  }
  return undefined
}

function parseJsonText (text: string, what: string): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new LedgerFormatError('ERR_MALFORMED_LEDGER', `${what} is not JSON`)
  }
  const key = repeatedJsonKey(text)
  if (key !== undefined) {
    throw new LedgerFormatError('ERR_MALFORMED_LEDGER', `${what} names the key ${JSON.stringify(key)} twice in one object; no coordinator writes that, so the file was edited: fetch it again from the coordinator`)
  }
  return value
}

function firstIssue (error: z.ZodError, what: string): LedgerFormatError {
  const issue = error.issues[0]
  const where = issue?.path.length ? issue.path.join('.') : what
  return new LedgerFormatError('ERR_MALFORMED_LEDGER', `${what}: ${where}: ${issue?.message ?? 'invalid'}`)
}

/** Parses an exported ledger (`ledger.json` text); throws LedgerFormatError naming the first bad field. */
export function parseLedgerJson (text: string): LedgerEntry[] {
  const parsed = z.array(ledgerEntrySchema).safeParse(parseJsonText(text, 'the ledger'))
  if (!parsed.success) throw firstIssue(parsed.error, 'the ledger')
  return parsed.data
}

/**
 * What the coordinator signs at each round close: the chain up to row `seq` (of `rows` rows)
 * ends in `hash`. Anyone who keeps one can later show a rewritten history: the row at `seq`
 * no longer hashes to it.
 */
export const ledgerHeadSchema = z.object({
  runId: z.string().max(64),
  round: z.number().int().nonnegative(),
  seq: z.number().int().nonnegative(),
  rows: z.number().int().nonnegative(),
  hash: sha256HexSchema,
  signedAt: z.string().max(64),
  /** the coordinator's libp2p peer id; its key made `signature` */
  coordinator: z.string().min(1).max(128),
  /** base64 Ed25519 signature over canonicalLedgerHead */
  signature: z.string().min(1).max(200)
}).strict()

export type SignedLedgerHead = z.infer<typeof ledgerHeadSchema>
export type LedgerHead = Omit<SignedLedgerHead, 'signature'>

/** The exact text the coordinator signs for a head: fixed order, a tag, no whitespace. */
export function canonicalLedgerHead (h: LedgerHead): string {
  return JSON.stringify(['barnraise-ledger-head-v1', h.runId, h.round, h.seq, h.rows, h.hash, h.signedAt, h.coordinator])
}

/** Signs a head with the coordinator's key. */
export async function signLedgerHead (key: PrivateKey, head: LedgerHead): Promise<SignedLedgerHead> {
  const signature = await key.sign(encoder.encode(canonicalLedgerHead(head)))
  return { ...head, signature: btoa(String.fromCharCode(...signature)) }
}

/** Parses a saved head (or a list of them, newest last); throws LedgerFormatError. */
export function parseLedgerHeads (text: string): SignedLedgerHead[] {
  const value = parseJsonText(text, 'the ledger head')
  const parsed = z.array(ledgerHeadSchema).safeParse(Array.isArray(value) ? value : [value])
  if (!parsed.success) throw firstIssue(parsed.error, 'the ledger head')
  return parsed.data
}

/**
 * Where row `seq` sits, or -1. A verified ledger's seqs increase, so a binary search finds it; a
 * coordinator may publish a head per round, and a scan per head would cost rounds × rows. Falls
 * back to the scan for rows verifyLedger has not ordered.
 */
function indexOfSeq (entries: LedgerEntry[], seq: number): number {
  let lo = 0
  let hi = entries.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const at = entries[mid]!.seq
    if (at === seq) return mid
    if (at < seq) lo = mid + 1
    else hi = mid - 1
  }
  return entries.findIndex((e) => e.seq === seq)
}

/**
 * Checks a signed head against a ledger: the signature is the named coordinator's (and, when
 * given, the coordinator the caller expects), and the ledger still holds the row it signed,
 * with the same hash and as many rows up to it. Returns why not, or undefined when it holds.
 */
export async function checkLedgerHead (runId: string, entries: LedgerEntry[], head: SignedLedgerHead, expectedCoordinator?: string): Promise<string | undefined> {
  if (expectedCoordinator !== undefined && head.coordinator !== expectedCoordinator) {
    return `the head was signed by ${head.coordinator}, not the coordinator ${expectedCoordinator}`
  }
  const { signature, ...fields } = head
  if (!await verifyPeerSignature(head.coordinator, canonicalLedgerHead(fields), signature)) return 'the head\'s signature does not verify'
  if (head.runId !== runId) return `the head is for run ${head.runId}`
  if (head.seq === 0) return head.rows === 0 ? undefined : 'the head signs an empty ledger with rows'
  const at = indexOfSeq(entries, head.seq)
  if (at === -1) return `row seq=${head.seq}, signed at round ${head.round}, is missing (history was rewritten)`
  if (entries[at]!.hash !== head.hash) return `row seq=${head.seq} hashes differently from what was signed at round ${head.round} (history was rewritten)`
  if (at + 1 !== head.rows) return `${at + 1} rows lead up to seq=${head.seq}, but ${head.rows} were signed at round ${head.round} (rows were removed or inserted)`
  return undefined
}

import { CODEC_NAMES } from './codecs/index.ts'
import { z } from 'zod'
import { verifyPeerSignature } from './peer-signature.ts'

/**
 * The signed report: what a node signs about one pseudo-gradient, the exact bytes it signs,
 * and the parser that reads those bytes back from a ledger row. The encoder and the parser
 * sit side by side so the positions cannot drift apart.
 */

/** What trained a report: the TypeScript CPU trainer, or PyTorch on CPU or CUDA. */
export const executorKindSchema = z.enum(['typescript', 'torch-cpu', 'torch-cuda'])

export type ExecutorKind = z.infer<typeof executorKindSchema>

/** The most devices one report may say trained it (a machine's GPUs). */
export const MAX_REPORT_DEVICES = 64

/**
 * A UUID as the database writes it. Postgres reads `ABC…` and `abc…` as one id, JavaScript and
 * the ledger's one-credit-per-unit check as two: an upper-case id would let one unit be
 * credited twice, or land in a row whose (lower-case) id no longer matches what was signed.
 */
const canonicalUuid = z.string().uuid().regex(/^[0-9a-f-]+$/, 'must be a UUID in lower case')

/**
 * What a node signs about one report. Field order is fixed by `canonicalReportMetadata`,
 * so the same bytes can be rebuilt from a ledger row and checked offline. `executor` came
 * later: reports without it are signed (and verified) in the original v1 form.
 */
export const reportMetadataSchema = z.object({
  runId: canonicalUuid,
  round: z.number().int().nonnegative(),
  assignmentId: canonicalUuid,
  peerId: z.string().min(1).max(100),
  tokens: z.number().int().nonnegative(),
  computeSeconds: z.number().nonnegative(),
  lossCurve: z.array(z.number()).max(100_000),
  codec: z.enum(CODEC_NAMES),
  payloadBytes: z.number().int().nonnegative(),
  payloadSha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256'),
  executor: executorKindSchema.optional(),
  /**
   * How many devices trained the report together (a node on several GPUs, data parallel in one
   * torch child); absent means one. A claim, counted only up to the GPUs the node listed.
   */
  devices: z.number().int().min(2).max(MAX_REPORT_DEVICES).optional()
}).strict()
  .refine((m) => m.devices === undefined || m.executor !== undefined, { message: 'a report naming its devices names its executor too', path: ['devices'] })

export type ReportMetadata = z.infer<typeof reportMetadataSchema>

const V1 = 'barnraise-report-v1'
const V2 = 'barnraise-report-v2'
const V3 = 'barnraise-report-v3'

/**
 * The canonical text a node signs: a JSON array with a fixed order and no whitespace. With
 * an executor the tag is v2 and the executor is the last element; with a device count too, v3
 * with the count after the executor; without either the text is exactly the v1 form, so rows
 * signed before the fields existed still verify.
 */
export function canonicalReportMetadataText (m: ReportMetadata): string {
  const ordered = [m.runId, m.round, m.assignmentId, m.peerId, m.tokens, m.computeSeconds, m.lossCurve, m.codec, m.payloadBytes, m.payloadSha256]
  if (m.executor === undefined) return JSON.stringify([V1, ...ordered])
  return JSON.stringify(m.devices === undefined ? [V2, ...ordered, m.executor] : [V3, ...ordered, m.executor, m.devices])
}

/** The bytes a node signs: `canonicalReportMetadataText` as UTF-8. */
export function canonicalReportMetadata (m: ReportMetadata): Uint8Array {
  return new TextEncoder().encode(canonicalReportMetadataText(m))
}

/**
 * Reads canonical metadata text (v1, v2 or v3) back into checked fields; undefined when it is
 * neither form, a field is malformed, or the text is not exactly what the encoder writes for
 * those fields. The last matters because a signature covers the text, not the fields: JSON
 * spells one value many ways (`40`, `4e1`, `40.0`, `"\u0034"`, spaces, a number past 2^53 that
 * rounds), and a verifier must not read a meaning other readers of the same bytes might not.
 */
export function parseReportMetadata (text: string): ReportMetadata | undefined {
  let arr: unknown
  try {
    arr = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!Array.isArray(arr)) return undefined
  const [tag, runId, round, assignmentId, peerId, tokens, computeSeconds, lossCurve, codec, payloadBytes, payloadSha256, executor, devices] = arr as unknown[]
  const fields = { runId, round, assignmentId, peerId, tokens, computeSeconds, lossCurve, codec, payloadBytes, payloadSha256 }
  let candidate: unknown
  if (tag === V1 && arr.length === 11) candidate = fields
  else if (tag === V2 && arr.length === 12) candidate = { ...fields, executor }
  else if (tag === V3 && arr.length === 13) candidate = { ...fields, executor, devices }
  else return undefined
  const parsed = reportMetadataSchema.safeParse(candidate)
  if (!parsed.success) return undefined
  return canonicalReportMetadataText(parsed.data) === text ? parsed.data : undefined
}

/** Checks a node's signature over canonical report metadata text. */
export async function verifyReportSignature (peerId: string, metadataText: string, signatureB64: string): Promise<boolean> {
  return await verifyPeerSignature(peerId, metadataText, signatureB64)
}

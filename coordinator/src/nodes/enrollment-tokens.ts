import { createHash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'

const TOKEN_PREFIX = 'brt_'

/** Tokens are stored only as this hash, so a leaked database does not leak usable tokens. */
export function hashToken (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export interface CreatedToken {
  id: string
  token: string
  organizationId: string
  maxUses: number
  expiresAt: Date | null
}

/**
 * What a new token allows: how many nodes it may enroll and for how many hours (none: no
 * expiry). The one place these bounds are written; the CLI, the admin socket and the
 * dashboard all parse with it.
 */
export const tokenLimitsSchema = z.object({
  maxUses: z.number().int('must be a whole number').min(1, 'a token allows at least 1 use').max(10_000, 'a token allows at most 10000 uses').default(1),
  expiresInHours: z.number().positive('must be a positive number of hours').max(24 * 365, 'at most a year (8760 hours)').optional()
})
export type TokenLimits = z.input<typeof tokenLimitsSchema>

/** When a token issued at `now` with this lifetime stops working; null when it never does. */
export function tokenExpiry (expiresInHours: number | undefined, now = Date.now()): Date | null {
  return expiresInHours === undefined ? null : new Date(now + expiresInHours * 3_600_000)
}

export interface CreateTokenOptions {
  organizationId: string
  limits?: TokenLimits
  label?: string | null
  createdBy?: string | null
}

/** Issues a new enrollment token; the plain token is returned once and never stored. */
export async function createEnrollmentToken (db: Kysely<Database>, options: CreateTokenOptions): Promise<CreatedToken> {
  const parsed = tokenLimitsSchema.safeParse(options.limits ?? {})
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new CoordinatorError('ERR_INVALID_INPUT', `${issue.path.join('.')}: ${issue.message}`)
  }
  const { maxUses, expiresInHours } = parsed.data
  const token = TOKEN_PREFIX + randomBytes(24).toString('base64url')
  const row = await db.insertInto('enrollment_tokens')
    .values({
      organization_id: options.organizationId,
      token_hash: hashToken(token),
      max_uses: maxUses,
      expires_at: tokenExpiry(expiresInHours),
      label: options.label ?? null,
      created_by: options.createdBy ?? null
    })
    .returning(['id', 'expires_at'])
    .executeTakeFirstOrThrow()
  return { id: row.id, token, organizationId: options.organizationId, maxUses, expiresAt: row.expires_at }
}

/**
 * Uses up one use of a token inside the caller's transaction, so a refused enrollment
 * leaves the count untouched. Throws ERR_INVALID_TOKEN for unknown, spent, expired or revoked tokens.
 */
export async function consumeEnrollmentToken (trx: Transaction<Database>, token: string): Promise<{ tokenId: string, organizationId: string }> {
  const row = await trx.updateTable('enrollment_tokens')
    .set((eb) => ({ used_count: eb('used_count', '+', 1) }))
    .where('token_hash', '=', hashToken(token))
    .where((eb) => eb('used_count', '<', eb.ref('max_uses')))
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', new Date())]))
    .returning(['id', 'organization_id'])
    .executeTakeFirst()
  if (row === undefined) {
    throw new CoordinatorError('ERR_INVALID_TOKEN', 'enrollment token is unknown, used up, expired or revoked; ask your lab admin for a new one')
  }
  return { tokenId: row.id, organizationId: row.organization_id }
}

/** Revokes a token so it can no longer enroll nodes. */
export async function revokeEnrollmentToken (db: Kysely<Database>, tokenId: string, organizationId: string): Promise<void> {
  const result = await db.updateTable('enrollment_tokens')
    .set({ revoked_at: new Date() })
    .where('id', '=', tokenId)
    .where('organization_id', '=', organizationId)
    .executeTakeFirst()
  if (result.numUpdatedRows === 0n) throw new CoordinatorError('ERR_NOT_FOUND', 'no such token in your organization')
}

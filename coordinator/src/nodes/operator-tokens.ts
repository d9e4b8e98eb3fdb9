import { z } from 'zod'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import { ensureOrganization, listOrganizations } from './organizations.ts'
import { createEnrollmentToken, tokenLimitsSchema } from './enrollment-tokens.ts'
import type { CreatedToken } from './enrollment-tokens.ts'

/** Input of the operator's `token create` (CLI, direct or through the admin socket). */
export const createTokenInputSchema = tokenLimitsSchema.extend({
  organization: z.string().trim().min(1).max(100).optional()
})
export type CreateTokenInput = z.infer<typeof createTokenInputSchema>

/**
 * Issues a token for the named organization (created if new). Without a name, an install
 * with exactly one organization uses it — `pnpm start`'s Demo Lab — and otherwise the
 * operator is asked to choose, with the names to choose from.
 */
export async function createOperatorToken (db: Kysely<Database>, input: CreateTokenInput): Promise<CreatedToken & { organizationName: string }> {
  let org
  if (input.organization !== undefined) {
    org = await ensureOrganization(db, input.organization)
  } else {
    const orgs = await listOrganizations(db)
    if (orgs.length === 0) throw new CoordinatorError('ERR_INVALID_INPUT', 'this install has no organizations yet; name the one the token is for with --org "Your Lab"')
    if (orgs.length > 1) throw new CoordinatorError('ERR_INVALID_INPUT', `this install has ${orgs.length} organizations; say which one with --org NAME (${orgs.slice(0, 6).map((o) => `"${o.name}"`).join(', ')}${orgs.length > 6 ? ', …' : ''})`)
    org = orgs[0]!
  }
  const token = await createEnrollmentToken(db, { organizationId: org.id, limits: input, label: 'cli' })
  return { ...token, organizationName: org.name }
}

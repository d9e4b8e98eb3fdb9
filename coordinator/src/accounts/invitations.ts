import { createHash, randomBytes } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import type { SelfServeRole } from './roles.ts'
import { hasRole } from './roles.ts'
import type { SessionUser } from './accounts.ts'

/** How long an invitation stays good unless its maker says otherwise. */
export const DEFAULT_INVITATION_DAYS = 7

export interface Invitation {
  id: string
  role: SelfServeRole
  organizationId: string | null
  organizationName: string | null
  maxUses: number
  usedCount: number
  expiresAt: string
  revoked: boolean
  createdAt: string
}

function hashCode (code: string): string {
  return createHash('sha256').update(code).digest('hex')
}

/**
 * What `maker` may invite: an admin invites to any role and organization; a lab admin invites
 * lab admins and funders into their own organization only.
 */
function checkMayInvite (maker: SessionUser, role: SelfServeRole, organizationId: string | null): void {
  if (maker.roles.includes('admin')) return
  if (!hasRole(maker.roles, 'lab_admin') || maker.organizationId === null) {
    throw new CoordinatorError('ERR_FORBIDDEN', 'only an admin or a lab admin can invite people')
  }
  if (role === 'organizer') throw new CoordinatorError('ERR_FORBIDDEN', 'only an admin can invite organizers')
  if (organizationId !== maker.organizationId) throw new CoordinatorError('ERR_FORBIDDEN', 'you can invite people into your own organization only')
}

/** Makes an invitation; the code is in this return value only (stored hashed). */
export async function createInvitation (db: Kysely<Database>, maker: SessionUser, input: { role: SelfServeRole, organizationId: string | null, maxUses: number, expiresInHours?: number }): Promise<{ id: string, code: string, expiresAt: string }> {
  // A lab admin's invitations are into their own lab; only an admin invites without one.
  const organizationId = input.organizationId ?? (maker.roles.includes('admin') && input.role !== 'lab_admin' ? null : maker.organizationId)
  if (input.role === 'lab_admin' && organizationId === null) throw new CoordinatorError('ERR_INVALID_INPUT', 'a lab admin invitation names the organization')
  checkMayInvite(maker, input.role, organizationId)
  if (organizationId !== null) {
    const org = await db.selectFrom('organizations').select('id').where('id', '=', organizationId).executeTakeFirst()
    if (org === undefined) throw new CoordinatorError('ERR_NOT_FOUND', 'no such organization')
  }
  const code = randomBytes(18).toString('base64url')
  const expiresAt = new Date(Date.now() + (input.expiresInHours ?? DEFAULT_INVITATION_DAYS * 24) * 3_600_000)
  const row = await db.insertInto('invitations').values({
    code_hash: hashCode(code), role: input.role, organization_id: organizationId, created_by: maker.id, max_uses: input.maxUses, expires_at: expiresAt
  }).returning('id').executeTakeFirstOrThrow()
  return { id: row.id, code, expiresAt: expiresAt.toISOString() }
}

/** Invitations an admin made anywhere, or a lab admin into their organization (nobody else sees any). */
export async function listInvitations (db: Kysely<Database>, viewer: SessionUser): Promise<Invitation[]> {
  let query = db.selectFrom('invitations').leftJoin('organizations', 'organizations.id', 'invitations.organization_id')
    .select(['invitations.id', 'invitations.role', 'invitations.organization_id', 'organizations.name', 'invitations.max_uses', 'invitations.used_count', 'invitations.expires_at', 'invitations.revoked_at', 'invitations.created_at'])
    .orderBy('invitations.created_at', 'desc').limit(200)
  if (!viewer.roles.includes('admin')) {
    if (!hasRole(viewer.roles, 'lab_admin') || viewer.organizationId === null) return []
    query = query.where('invitations.organization_id', '=', viewer.organizationId)
  }
  return (await query.execute()).map((r) => ({
    id: r.id, role: r.role, organizationId: r.organization_id, organizationName: r.name, maxUses: r.max_uses, usedCount: r.used_count,
    expiresAt: r.expires_at.toISOString(), revoked: r.revoked_at !== null, createdAt: r.created_at.toISOString()
  }))
}

/** Revokes an invitation its viewer may see; unknown and foreign ids read the same. */
export async function revokeInvitation (db: Kysely<Database>, viewer: SessionUser, id: string): Promise<void> {
  if (!hasRole(viewer.roles, 'lab_admin')) throw new CoordinatorError('ERR_FORBIDDEN', 'only an admin or a lab admin can revoke invitations')
  let query = db.updateTable('invitations').set({ revoked_at: new Date() }).where('id', '=', id).where('revoked_at', 'is', null)
  if (!viewer.roles.includes('admin')) query = query.where('organization_id', '=', viewer.organizationId ?? '00000000-0000-0000-0000-000000000000')
  const result = await query.executeTakeFirst()
  if (Number(result.numUpdatedRows) === 0) throw new CoordinatorError('ERR_NOT_FOUND', 'no such invitation')
}

/** Spends one use of an invitation inside the sign-up transaction; refuses a used, expired or unknown code alike. */
export async function redeemInvitation (trx: Transaction<Database>, code: string): Promise<{ role: SelfServeRole, organizationId: string | null }> {
  if (code.length === 0 || code.length > 100) throw new CoordinatorError('ERR_INVALID_INPUT', 'this invitation is not valid')
  const spent = await trx.updateTable('invitations').set((eb) => ({ used_count: eb('used_count', '+', 1) }))
    .where('code_hash', '=', hashCode(code)).where('revoked_at', 'is', null).where('expires_at', '>', new Date())
    .where((eb) => eb('used_count', '<', eb.ref('max_uses')))
    .returning(['role', 'organization_id']).executeTakeFirst()
  if (spent === undefined) throw new CoordinatorError('ERR_INVALID_INPUT', 'this invitation is not valid: it may be used up, expired or revoked; ask for a new one')
  return { role: spent.role, organizationId: spent.organization_id }
}

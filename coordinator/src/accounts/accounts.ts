import { createHash, randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import { ensureOrganization } from '../nodes/organizations.ts'
import { hashPassword, verifyPassword } from './passwords.ts'
import { ROLES } from './roles.ts'
import type { Role, SelfServeRole } from './roles.ts'

export const SESSION_COOKIE = 'barnraise_session'
const SESSION_DAYS = 30

export interface SessionUser {
  id: string
  email: string
  displayName: string
  roles: Role[]
  organizationId: string | null
  organizationName: string | null
}

function hashSessionToken (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export interface SignUpInput {
  email: string
  password: string
  displayName: string
  role: SelfServeRole
  organization?: string
}

/**
 * Creates an account. The very first account on an install becomes the admin (every role);
 * a lab admin names the organization they manage, created if new.
 */
export async function signUp (db: Kysely<Database>, input: SignUpInput): Promise<SessionUser> {
  const email = input.email.trim().toLowerCase()
  if (input.role === 'lab_admin' && (input.organization === undefined || input.organization.trim() === '')) {
    throw new CoordinatorError('ERR_INVALID_INPUT', 'a lab admin must name their organization')
  }
  const passwordHash = await hashPassword(input.password)
  return await db.transaction().execute(async (trx) => {
    // Serialize sign-ups so two "first" accounts cannot both become admin.
    await sql`lock table users in share row exclusive mode`.execute(trx)
    const existing = await trx.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst()
    if (existing !== undefined) throw new CoordinatorError('ERR_CONFLICT', 'an account with this email exists; sign in instead')
    const count = await trx.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    const first = Number(count.n) === 0
    const roles: Role[] = first ? [...ROLES] : [input.role]
    const org = input.organization !== undefined && input.organization.trim() !== '' ? await ensureOrganization(trx, input.organization) : null
    const row = await trx.insertInto('users').values({
      email, display_name: input.displayName.trim(), password_hash: passwordHash, roles, organization_id: org?.id ?? null
    }).returning('id').executeTakeFirstOrThrow()
    return { id: row.id, email, displayName: input.displayName.trim(), roles, organizationId: org?.id ?? null, organizationName: org?.name ?? null }
  })
}

/** Checks credentials; the same message for an unknown email and a wrong password. */
export async function authenticate (db: Kysely<Database>, email: string, password: string): Promise<string> {
  const user = await db.selectFrom('users').select(['id', 'password_hash']).where('email', '=', email.trim().toLowerCase()).executeTakeFirst()
  // Hash anyway on an unknown email so response time does not reveal which emails exist.
  const ok = await verifyPassword(password, user?.password_hash ?? 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA')
  if (user === undefined || !ok) throw new CoordinatorError('ERR_INVALID_INPUT', 'wrong email or password')
  return user.id
}

/** Starts a session; the returned token goes in an httpOnly cookie and is stored only hashed. */
export async function createSession (db: Kysely<Database>, userId: string): Promise<{ token: string, expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url')
  const expiresAt = new Date(Date.now() + SESSION_DAYS * 86_400_000)
  await db.insertInto('sessions').values({ token_hash: hashSessionToken(token), user_id: userId, expires_at: expiresAt }).execute()
  return { token, expiresAt }
}

/** Ends a session. */
export async function deleteSession (db: Kysely<Database>, token: string): Promise<void> {
  await db.deleteFrom('sessions').where('token_hash', '=', hashSessionToken(token)).execute()
}

/** The signed-in person behind a session token, or null when it is unknown or expired. */
export async function userForSession (db: Kysely<Database>, token: string | undefined): Promise<SessionUser | null> {
  if (token === undefined || token === '' || token.length > 200) return null
  const row = await db.selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .leftJoin('organizations', 'organizations.id', 'users.organization_id')
    .select(['users.id', 'users.email', 'users.display_name', 'users.roles', 'users.organization_id', 'organizations.name as organization_name', 'sessions.expires_at'])
    .where('sessions.token_hash', '=', hashSessionToken(token))
    .executeTakeFirst()
  if (row === undefined || row.expires_at.getTime() < Date.now()) return null
  return {
    id: row.id,
    email: row.email,
    displayName: row.display_name,
    roles: row.roles.filter((r): r is Role => (ROLES as readonly string[]).includes(r)),
    organizationId: row.organization_id,
    organizationName: row.organization_name
  }
}

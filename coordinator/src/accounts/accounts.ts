import { createHash, randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import type { Kysely, Transaction } from 'kysely'
import { plainTextProblem } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import { createOrganization, ensureOrganization } from '../nodes/organizations.ts'
import type { Organization } from '../nodes/organizations.ts'
import { redeemInvitation } from './invitations.ts'
import type { SetupCode } from './setup-code.ts'
import { hashPassword, verifyPassword } from './passwords.ts'
import type { CheckOptions } from './passwords.ts'
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

/**
 * The refusal of a wrong email or password: the same for both, so sign-in does not tell which
 * emails have accounts. A caller counts it as a failed sign-in; other refusals on the way (the
 * password checker being busy) are not the person's failure.
 */
export class WrongCredentialsError extends CoordinatorError {
  constructor () {
    super('ERR_INVALID_INPUT', 'wrong email or password')
  }
}

/**
 * A sign-up for an email that has an account. It says no more than a wrong-password sign-in
 * would: the caller checks the password and signs the owner in, or counts a failed sign-in and
 * answers with this.
 */
export class EmailTakenError extends CoordinatorError {
  constructor () {
    super('ERR_EMAIL_TAKEN', 'could not create this account; if one already exists for this email, sign in instead')
  }
}

/** Why `name` cannot be a person's display name (shown beside their pledges and runs), or undefined when it can. */
export function displayNameProblem (name: string): string | undefined {
  const trimmed = name.trim()
  if (trimmed.length === 0 || trimmed.length > 100) return 'display name must be 1 to 100 characters'
  const plain = plainTextProblem(trimmed)
  return plain === undefined ? undefined : `display name ${plain}`
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
  /** an invitation code: the role and organization come from it */
  invite?: string
  /** the coordinator's one-time setup code: makes this account the admin */
  setupCode?: string
}

/** What the install allows web sign-up to do. */
export interface SignUpPolicy {
  /** spent by the sign-up that makes the first admin; null where none is outstanding */
  setupCode: SetupCode | null
  /** anyone may sign up as an organizer (open communities); otherwise it takes an invitation */
  openOrganizing: boolean
}

async function adminExists (trx: Transaction<Database>): Promise<boolean> {
  const row = await trx.selectFrom('users').select('id').where(sql<boolean>`'admin' = any(roles)`).limit(1).executeTakeFirst()
  return row !== undefined
}

async function emailTaken (db: Kysely<Database>, email: string): Promise<boolean> {
  return await db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst() !== undefined
}

async function insertUser (trx: Transaction<Database>, input: { email: string, passwordHash: string, displayName: string, roles: Role[], organization: Organization | null }): Promise<SessionUser> {
  if (await emailTaken(trx, input.email)) throw new EmailTakenError()
  const problem = displayNameProblem(input.displayName)
  if (problem !== undefined) throw new CoordinatorError('ERR_INVALID_INPUT', problem)
  const displayName = input.displayName.trim()
  const row = await trx.insertInto('users').values({
    email: input.email, display_name: displayName, password_hash: input.passwordHash, roles: input.roles, organization_id: input.organization?.id ?? null
  }).returning('id').executeTakeFirstOrThrow()
  return { id: row.id, email: input.email, displayName, roles: input.roles, organizationId: input.organization?.id ?? null, organizationName: input.organization?.name ?? null }
}

/**
 * Web sign-up, open to strangers. The first admin needs the setup code the coordinator printed;
 * an existing organization is joined only with an invitation; organizers are invited unless
 * the install opens organizing to everyone. Naming an organization creates a new one. An
 * email that has an account is refused with `EmailTakenError` before anything is hashed or
 * spent (the setup code, an invitation's use).
 */
export async function signUp (db: Kysely<Database>, input: SignUpInput, policy: SignUpPolicy): Promise<SessionUser> {
  const email = input.email.trim().toLowerCase()
  // Answered before hashing: the caller then checks the password, one scrypt as a new email's hash is.
  if (await emailTaken(db, email)) throw new EmailTakenError()
  const passwordHash = await hashPassword(input.password)
  return await db.transaction().execute(async (trx) => {
    // Serialize sign-ups so two requests cannot both spend the setup code or the last invitation use.
    await sql`lock table users in share row exclusive mode`.execute(trx)
    // Again under the lock (one may have signed up meanwhile), before the setup code is spent.
    if (await emailTaken(trx, email)) throw new EmailTakenError()
    const hasAdmin = await adminExists(trx)
    const orgName = input.organization?.trim() ?? ''
    if (!hasAdmin) {
      if (input.setupCode === undefined || input.setupCode === '') {
        throw new CoordinatorError('ERR_SETUP_REQUIRED', 'this coordinator has no admin yet: sign up with the setup code it printed when it started, or run `pnpm coordinator user create --admin` on its machine')
      }
      const wrongCode = (): CoordinatorError => new CoordinatorError('ERR_INVALID_SETUP_CODE', 'that setup code is not the one this coordinator printed; copy it again from its output')
      const setupCode = policy.setupCode
      if (setupCode === null || !setupCode.matches(input.setupCode)) throw wrongCode()
      const organization = orgName === '' ? null : await createOrganization(trx, orgName)
      const admin = await insertUser(trx, { email, passwordHash, displayName: input.displayName, roles: [...ROLES], organization })
      // Spent only once the admin is made: when it was spent before the organization was made, a
      // taken name refused the sign-up and used up the only code (a restart printed another).
      // The table lock above keeps a second sign-up from reaching this meanwhile.
      if (!setupCode.spend(input.setupCode)) throw wrongCode()
      return admin
    }
    if (input.setupCode !== undefined && input.setupCode !== '') {
      throw new CoordinatorError('ERR_CONFLICT', 'this coordinator already has an admin; sign up without a setup code')
    }
    if (input.invite !== undefined && input.invite !== '') {
      const invited = await redeemInvitation(trx, input.invite)
      const organization = invited.organizationId === null
        ? null
        : await trx.selectFrom('organizations').select(['id', 'name', 'created_at']).where('id', '=', invited.organizationId).executeTakeFirstOrThrow()
      return await insertUser(trx, { email, passwordHash, displayName: input.displayName, roles: [invited.role], organization: organization === null ? null : { id: organization.id, name: organization.name, createdAt: organization.created_at } })
    }
    if (input.role === 'organizer' && !policy.openOrganizing) {
      throw new CoordinatorError('ERR_FORBIDDEN', 'organizers on this coordinator are invited: ask an admin for an invitation link')
    }
    if (input.role === 'lab_admin' && orgName === '') throw new CoordinatorError('ERR_INVALID_INPUT', 'a lab admin must name their organization')
    const organization = orgName === '' ? null : await createOrganization(trx, orgName)
    return await insertUser(trx, { email, passwordHash, displayName: input.displayName, roles: [input.role], organization })
  })
}

export interface CreateAccountInput {
  email: string
  password: string
  displayName: string
  role: SelfServeRole
  organization?: string
  admin: boolean
}

/** An account the operator makes on the coordinator's machine (CLI): any role, any organization. */
export async function createAccount (db: Kysely<Database>, input: CreateAccountInput): Promise<SessionUser> {
  const email = input.email.trim().toLowerCase()
  const passwordHash = await hashPassword(input.password)
  return await db.transaction().execute(async (trx) => {
    await sql`lock table users in share row exclusive mode`.execute(trx)
    const orgName = input.organization?.trim() ?? ''
    const organization = orgName === '' ? null : await ensureOrganization(trx, orgName)
    return await insertUser(trx, { email, passwordHash, displayName: input.displayName, roles: input.admin ? [...ROLES] : [input.role], organization })
  })
}

/**
 * Sets a person's password and ends every session they have, so a cookie taken with the old
 * password dies with it. Throws ERR_NOT_FOUND when no account has that email. `check` says
 * where the hash waits (`CheckOptions`).
 */
export async function setPassword (db: Kysely<Database>, who: { userId: string } | { email: string }, password: string, check: CheckOptions = {}): Promise<{ id: string, email: string }> {
  const passwordHash = await hashPassword(password, check)
  return await db.transaction().execute(async (trx) => {
    const query = trx.updateTable('users').set({ password_hash: passwordHash })
    const row = await ('userId' in who ? query.where('id', '=', who.userId) : query.where('email', '=', who.email.trim().toLowerCase()))
      .returning(['id', 'email']).executeTakeFirst()
    if (row === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no account ${'email' in who ? who.email : who.userId}`)
    await trx.deleteFrom('sessions').where('user_id', '=', row.id).execute()
    return row
  })
}

/** Ends every session a person has (signed in anywhere); returns how many. */
export async function endSessions (db: Kysely<Database>, userId: string): Promise<number> {
  const result = await db.deleteFrom('sessions').where('user_id', '=', userId).executeTakeFirst()
  return Number(result.numDeletedRows)
}

/** True when the install has an admin account. */
export async function hasAdmin (db: Kysely<Database>): Promise<boolean> {
  return await db.transaction().execute(async (trx) => await adminExists(trx))
}

/**
 * Checks credentials; an unknown email and a wrong password are the same `WrongCredentialsError`.
 * `check` says where the password check waits (`CheckOptions`).
 */
export async function authenticate (db: Kysely<Database>, email: string, password: string, check: CheckOptions = {}): Promise<string> {
  const user = await db.selectFrom('users').select(['id', 'password_hash']).where('email', '=', email.trim().toLowerCase()).executeTakeFirst()
  // Hash anyway on an unknown email so response time does not reveal which emails exist.
  const ok = await verifyPassword(password, user?.password_hash ?? 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA', check)
  if (user === undefined || !ok) throw new WrongCredentialsError()
  return user.id
}

/** Starts a session; the returned token goes in an httpOnly cookie and is stored only hashed. */
export async function createSession (db: Kysely<Database>, userId: string): Promise<{ token: string, expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url')
  const expiresAt = new Date(Date.now() + SESSION_DAYS * 86_400_000)
  await db.insertInto('sessions').values({ token_hash: hashSessionToken(token), user_id: userId, expires_at: expiresAt }).execute()
  // Each sign-in adds a row: the person's expired ones, and all past their newest few, go.
  const kept = db.selectFrom('sessions').select('token_hash').where('user_id', '=', userId).orderBy('expires_at', 'desc').limit(MAX_SESSIONS_PER_USER)
  await db.deleteFrom('sessions').where('user_id', '=', userId)
    .where((eb) => eb.or([eb('expires_at', '<=', new Date()), eb('token_hash', 'not in', kept)])).execute()
  return { token, expiresAt }
}

/** Sessions one person keeps at once (browsers, devices); a sign-in past this ends the oldest. */
export const MAX_SESSIONS_PER_USER = 20

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

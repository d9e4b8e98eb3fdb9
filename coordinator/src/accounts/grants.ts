import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import { SELF_SERVE_ROLES } from './roles.ts'
import type { Role, SelfServeRole } from './roles.ts'

export interface Person { id: string, email: string, displayName: string, roles: Role[], organizationName: string | null, createdAt: string }

/** Every account, for an admin deciding who may organize. */
export async function listPeople (db: Kysely<Database>): Promise<Person[]> {
  const rows = await db.selectFrom('users').leftJoin('organizations', 'organizations.id', 'users.organization_id')
    .select(['users.id', 'users.email', 'users.display_name', 'users.roles', 'organizations.name', 'users.created_at'])
    .orderBy('users.created_at').limit(1000).execute()
  return rows.map((r) => ({ id: r.id, email: r.email, displayName: r.display_name, roles: r.roles as Role[], organizationName: r.name, createdAt: r.created_at.toISOString() }))
}

/** Grants or takes away one role (not admin: that is made on the coordinator's machine). */
export async function setRole (db: Kysely<Database>, userId: string, role: SelfServeRole, granted: boolean): Promise<Role[]> {
  if (!(SELF_SERVE_ROLES as readonly string[]).includes(role)) throw new CoordinatorError('ERR_INVALID_INPUT', `unknown role ${role}`)
  const user = await db.selectFrom('users').select('roles').where('id', '=', userId).executeTakeFirst()
  if (user === undefined) throw new CoordinatorError('ERR_NOT_FOUND', 'no such account')
  if (user.roles.includes('admin')) throw new CoordinatorError('ERR_CONFLICT', 'an admin already has every role')
  const roles = (granted ? [...new Set([...user.roles, role])] : user.roles.filter((r) => r !== role)) as Role[]
  await db.updateTable('users').set({ roles }).where('id', '=', userId).execute()
  return roles
}

import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'

export interface Organization { id: string, name: string, createdAt: Date }

function checkedName (name: string): string {
  const trimmed = name.trim()
  if (trimmed.length === 0 || trimmed.length > 100) {
    throw new CoordinatorError('ERR_INVALID_INPUT', 'organization name must be 1 to 100 characters')
  }
  return trimmed
}

/**
 * Creates a new organization; a taken name is refused, so nobody joins an organization by
 * naming it (they need an invitation from it).
 */
export async function createOrganization (db: Kysely<Database>, name: string): Promise<Organization> {
  const trimmed = checkedName(name)
  const row = await db.insertInto('organizations').values({ name: trimmed })
    .onConflict((oc) => oc.column('name').doNothing()).returningAll().executeTakeFirst()
  if (row === undefined) throw new CoordinatorError('ERR_NAME_TAKEN', `an organization named “${trimmed}” already exists; ask its lab admin for an invitation`)
  return { id: row.id, name: row.name, createdAt: row.created_at }
}

/** Returns the organization with this name, creating it if new: for the operator's own CLI only. */
export async function ensureOrganization (db: Kysely<Database>, name: string): Promise<Organization> {
  const trimmed = checkedName(name)
  await db.insertInto('organizations').values({ name: trimmed })
    .onConflict((oc) => oc.column('name').doNothing()).execute()
  const row = await db.selectFrom('organizations').selectAll().where('name', '=', trimmed).executeTakeFirstOrThrow()
  return { id: row.id, name: row.name, createdAt: row.created_at }
}

/** Lists organizations by name. */
export async function listOrganizations (db: Kysely<Database>): Promise<Organization[]> {
  const rows = await db.selectFrom('organizations').selectAll().orderBy('name').execute()
  return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at }))
}

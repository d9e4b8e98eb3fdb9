import type { Kysely } from 'kysely'
import { plainTextProblem } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'
import { nameKey } from './name-key.ts'
import { mixedScriptWord } from './mixed-script.ts'

export interface Organization { id: string, name: string, createdAt: Date }

/** The longest organization name, in UTF-16 units as the sign-up form counts them. */
export const MAX_ORGANIZATION_NAME = 100

/**
 * Invisible characters refused in a name: every default-ignorable code point (zero-width
 * space, word joiner, BOM, Hangul fillers, tag characters, …) except those that writing needs
 * (the zero-width non-joiner and joiner, in Persian, Indic scripts and emoji; variation
 * selectors, in emoji) and the direction marks plain text allows (U+200E, U+200F).
 */
const INVISIBLE = /(?![\u200c-\u200f\ufe00-\ufe0f])\p{Default_Ignorable_Code_Point}/u

/**
 * Why `name` cannot be an organization's name (shown on public pages, the ledger and its
 * exports), or undefined when it can: it must be plain text (no control or bidirectional
 * formatting characters, as node text), hold no zero-width or other invisible character, have
 * something visible, and write each word in one script (mixed-script.ts).
 */
export function organizationNameProblem (name: string): string | undefined {
  const trimmed = name.trim()
  if (trimmed.length === 0 || trimmed.length > MAX_ORGANIZATION_NAME) return `organization name must be 1 to ${MAX_ORGANIZATION_NAME} characters`
  const plain = plainTextProblem(trimmed)
  if (plain !== undefined) return `organization name ${plain}`
  const invisible = INVISIBLE.exec(trimmed)
  if (invisible !== null) {
    const cp = invisible[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')
    return `organization name must not hold invisible characters: U+${cp} (zero-width or another default-ignorable character) is refused; remove it`
  }
  if (nameKey(trimmed) === '') return 'organization name must hold a visible character'
  const mixed = mixedScriptWord(trimmed)
  if (mixed !== undefined) {
    return `organization name must not mix scripts within a word: "${mixed.word}" mixes ${mixed.scripts.join(' and ')} letters, which is how a look-alike of another lab's name is made; write each word in one script`
  }
  return undefined
}

function checkedName (name: string): string {
  const problem = organizationNameProblem(name)
  if (problem !== undefined) throw new CoordinatorError('ERR_INVALID_INPUT', problem)
  return name.trim()
}

/**
 * Creates a new organization; a taken name is refused, so nobody joins an organization by
 * naming it (they need an invitation from it). "Taken" means the same name key: a name that
 * differs only in case, spacing or invisible characters is taken too.
 */
export async function createOrganization (db: Kysely<Database>, name: string): Promise<Organization> {
  const trimmed = checkedName(name)
  // No conflict target: the name's own unique index and the key's both answer "taken".
  const row = await db.insertInto('organizations').values({ name: trimmed, name_key: nameKey(trimmed) })
    .onConflict((oc) => oc.doNothing()).returningAll().executeTakeFirst()
  if (row === undefined) {
    throw new CoordinatorError('ERR_NAME_TAKEN', `an organization named “${trimmed}” (or a name that reads the same: other case or spacing, or look-alike letters of another script) already exists; ask its lab admin for an invitation, or choose another name`)
  }
  return { id: row.id, name: row.name, createdAt: row.created_at }
}

/**
 * Returns the organization with this name (by name key, so other case or spacing finds it),
 * creating it if new: for the operator's own CLI only.
 */
export async function ensureOrganization (db: Kysely<Database>, name: string): Promise<Organization> {
  const find = async (trimmed: string, key: string) => await db.selectFrom('organizations').selectAll()
    .where((eb) => eb.or([eb('name_key', '=', key), eb('name', '=', trimmed)])).orderBy('created_at').limit(1).executeTakeFirst()
  // An organization named before a rule existed (a mixed-script word) is still found by its name.
  const existing = await find(name.trim(), nameKey(name.trim()))
  const row = existing ?? await (async () => {
    const trimmed = checkedName(name)
    await db.insertInto('organizations').values({ name: trimmed, name_key: nameKey(trimmed) })
      .onConflict((oc) => oc.doNothing()).execute()
    return await find(trimmed, nameKey(trimmed))
  })()
  if (row === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `the organization "${name.trim()}" was removed while it was being made; try again`)
  return { id: row.id, name: row.name, createdAt: row.created_at }
}

/** Lists organizations by name. */
export async function listOrganizations (db: Kysely<Database>): Promise<Organization[]> {
  const rows = await db.selectFrom('organizations').selectAll().orderBy('name').execute()
  return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at }))
}

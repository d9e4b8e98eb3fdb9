import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import { IGNORABLE, nameKey as plainNameKey } from './2026-12-08-0001-organization-name-keys.ts'

/** Rows keyed per statement: one round trip for many rows, well under Postgres's parameter limit. */
const CHUNK = 500

/**
 * Letters of other scripts that read as a Latin letter in one of their cases, with that Latin
 * letter in lower case; as the coordinator had them when this migration was written
 * (`LOOK_ALIKES` in coordinator/src/nodes/name-key.ts), kept here so the keys computed below
 * stay what they were however that table changes later. Both cases are listed: the key is
 * case-insensitive, so a letter whose capital looks Latin (Cyrillic Н, H) folds in both.
 */
export const LOOK_ALIKES: ReadonlyArray<readonly [string, string]> = [
  // Cyrillic
  ['а', 'a'], ['А', 'a'], ['в', 'b'], ['В', 'b'], ['е', 'e'], ['Е', 'e'], ['к', 'k'], ['К', 'k'], ['м', 'm'], ['М', 'm'],
  ['н', 'h'], ['Н', 'h'], ['о', 'o'], ['О', 'o'], ['р', 'p'], ['Р', 'p'], ['с', 'c'], ['С', 'c'], ['т', 't'], ['Т', 't'],
  ['у', 'y'], ['У', 'y'], ['х', 'x'], ['Х', 'x'], ['ѕ', 's'], ['Ѕ', 's'], ['і', 'i'], ['І', 'i'], ['ј', 'j'], ['Ј', 'j'],
  ['ԛ', 'q'], ['Ԛ', 'q'], ['ԝ', 'w'], ['Ԝ', 'w'], ['ԁ', 'd'], ['һ', 'h'], ['Һ', 'h'], ['ӏ', 'l'], ['Ӏ', 'l'], ['ү', 'y'], ['Ү', 'y'],
  // Greek
  ['α', 'a'], ['Α', 'a'], ['β', 'b'], ['Β', 'b'], ['ε', 'e'], ['Ε', 'e'], ['ζ', 'z'], ['Ζ', 'z'], ['η', 'h'], ['Η', 'h'],
  ['ι', 'i'], ['Ι', 'i'], ['κ', 'k'], ['Κ', 'k'], ['μ', 'm'], ['Μ', 'm'], ['ν', 'n'], ['Ν', 'n'], ['ο', 'o'], ['Ο', 'o'],
  ['ρ', 'p'], ['Ρ', 'p'], ['τ', 't'], ['Τ', 't'], ['υ', 'y'], ['Υ', 'y'], ['χ', 'x'], ['Χ', 'x'], ['ϲ', 'c'], ['Ϲ', 'c'], ['ϳ', 'j'], ['Ϳ', 'j'],
  // Armenian
  ['օ', 'o'], ['Օ', 'o'], ['ս', 'u'], ['Ս', 'u'], ['հ', 'h'], ['ո', 'n'], ['ց', 'g'], ['զ', 'q'], ['ա', 'w'],
  // Cherokee (capitals; their lower-case forms, U+AB70 on, are added below)
  ['\u13a0', 'd'], ['\u13a1', 'r'], ['\u13a2', 't'], ['\u13aa', 'a'], ['\u13ab', 'j'], ['\u13ac', 'e'], ['\u13b3', 'w'], ['\u13b7', 'm'],
  ['\u13bb', 'h'], ['\u13c0', 'g'], ['\u13c3', 'z'], ['\u13d9', 'v'], ['\u13da', 's'], ['\u13de', 'l'], ['\u13df', 'c'], ['\u13e2', 'p'],
  ['\u13e6', 'k'], ['\u13f4', 'b']
]

/** Each look-alike with its lower-case form too (Cherokee capitals lower-case to other code points). */
function table (pairs: ReadonlyArray<readonly [string, string]>): Map<string, string> {
  const map = new Map<string, string>()
  for (const [letter, latin] of pairs) {
    map.set(letter, latin)
    map.set(letter.toLowerCase(), latin)
  }
  return map
}

const FOLD = table(LOOK_ALIKES)

/** The rule of this migration: the earlier key (2026-12-08-0001), then each look-alike letter read as its Latin one. */
export function nameKey (name: string): string {
  return [...plainNameKey(name)].map((ch) => FOLD.get(ch) ?? ch).join('')
}

/** `translate` arguments for the fold, as SQL string literals (no letter in the table needs quoting). */
function translateArguments (map: Map<string, string>): { from: string, to: string } {
  return { from: [...map.keys()].join(''), to: [...map.values()].join('') }
}

/** `nameKey` in SQL, of the text `expression`, for rows given no key (the triggers): the earlier approximation, then the fold. */
export function nameKeySql (expression: string): string {
  const { from, to } = translateArguments(FOLD)
  return String.raw`translate(lower(btrim(regexp_replace(regexp_replace(normalize(${expression}, NFKC), '${IGNORABLE}', '', 'g'), '\s+', ' ', 'g'))), '${from}', '${to}')`
}

/** What the earlier migrations' triggers computed, for `down`. */
function plainNameKeySql (expression: string): string {
  return String.raw`lower(btrim(regexp_replace(regexp_replace(normalize(${expression}, NFKC), '${IGNORABLE}', '', 'g'), '\s+', ' ', 'g')))`
}

/**
 * Re-keys every row of `table` with `key`, in `order`: where two rows of one `scope` (all
 * organizations; one lab's nodes) now read the same, the first keeps the key and each later one
 * gets the key, a line feed and its id, which no name's key can be, so this cannot fail. Every
 * key is first set to a placeholder no key can equal, so no update meets a row not yet re-keyed.
 */
async function rekey (db: Kysely<unknown>, which: 'organizations' | 'nodes', key: (name: string) => string): Promise<void> {
  const rows = which === 'organizations'
    ? (await sql<{ id: string, scope: string, name: string }>`select id, '' as scope, name from organizations order by created_at, id`.execute(db)).rows
    : (await sql<{ id: string, scope: string, name: string }>`select id, organization_id::text as scope, name from nodes order by first_seen_at, id`.execute(db)).rows
  const taken = new Set<string>()
  const keyed = rows.map((row) => {
    const plain = key(row.name)
    const value = taken.has(`${row.scope}\n${plain}`) ? `${plain}\n${row.id}` : plain
    taken.add(`${row.scope}\n${value}`)
    return { id: row.id, key: value }
  })
  await sql`update ${sql.table(which)} set name_key = E'\n\n' || id::text`.execute(db)
  for (let at = 0; at < keyed.length; at += CHUNK) {
    const values = sql.join(keyed.slice(at, at + CHUNK).map((r) => sql`(${r.id}::uuid, ${r.key}::text)`))
    await sql`update ${sql.table(which)} set name_key = v.key from (values ${values}) as v (id, key) where ${sql.table(which)}.id = v.id`.execute(db)
  }
}

/** The two triggers' functions, computing keys with `keySql` (bodies as migrations 2026-12-08-0001 and 2026-12-10-0001 wrote them). */
async function replaceTriggerFunctions (db: Kysely<unknown>, keySql: (expression: string) => string): Promise<void> {
  await sql.raw(String.raw`create or replace function organizations_name_key() returns trigger language plpgsql as $$
    begin
      if new.name_key is null or (tg_op = 'UPDATE' and new.name is distinct from old.name and new.name_key is not distinct from old.name_key) then
        new.name_key := ${keySql('new.name')};
      end if;
      return new;
    end
  $$`).execute(db)
  await sql.raw(String.raw`create or replace function nodes_name_key() returns trigger language plpgsql as $$
    begin
      if new.name_key is null then
        new.name_key := ${keySql('new.name')};
      end if;
      return new;
    end
  $$`).execute(db)
}

/**
 * Name keys fold letters of other scripts that read as Latin ones: "Арех Lab" with a
 * wholly Cyrillic first word (each word in one script, so the mixed-script rule lets it through)
 * reads as "Apex Lab" on the ledger, pledge statements and model cards, and now
 * has its key. Every organization and node is re-keyed (a clash among existing rows gets the
 * suffix the earlier migrations gave), and the triggers fold too.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await rekey(db, 'organizations', nameKey)
  await rekey(db, 'nodes', nameKey)
  await replaceTriggerFunctions(db, nameKeySql)
}

/** Keys as before (case, spacing, compatibility forms and invisible characters only), and the triggers' earlier functions. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await rekey(db, 'organizations', plainNameKey)
  await rekey(db, 'nodes', plainNameKey)
  await replaceTriggerFunctions(db, plainNameKeySql)
}

import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * The rule as the coordinator had it when this migration was written (`organizationNameKey` in
 * coordinator/src/nodes/organizations.ts then, `nameKey` in coordinator/src/nodes/name-key.ts
 * now): kept here so this migration, and 2026-12-10-0001 (node names) that reuses it, compute
 * the same keys however that rule changes later.
 */
export function nameKey (name: string): string {
  return name.normalize('NFKC').replace(/\p{Default_Ignorable_Code_Point}/gu, '').replace(/\s+/gu, ' ').trim().toLowerCase()
}

/** Default_Ignorable_Code_Point (Unicode 17) as a Postgres regular-expression bracket. */
export const IGNORABLE = String.raw`[\u00ad\u034f\u061c\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]`

/**
 * `nameKey` in SQL, of the text `expression` (a trigger's `new.name`): the same for every name
 * whose case Postgres folds as JavaScript does (all of ASCII, and more under a UTF-8 locale).
 */
export function nameKeySql (expression: string): string {
  return String.raw`lower(btrim(regexp_replace(regexp_replace(normalize(${expression}, NFKC), '${IGNORABLE}', '', 'g'), '\s+', ' ', 'g')))`
}

/**
 * `organizations.name_key`, unique: what a name reads as (compatibility forms folded, invisible
 * characters dropped, spacing collapsed, case ignored), so "Hilltop  Lab" or "hilltop lab"
 * cannot sit beside "Hilltop Lab" on public pages as another organization. Existing rows are
 * keyed here; where two already read the same, the older keeps the key and each later one gets
 * the key, a line feed and its id, which no name's key can be (whitespace collapses to a
 * space), so this migration cannot fail and a new sign-up with that name is still refused.
 * The coordinator writes the key itself; a row inserted without one (a script, a test) gets it
 * from a trigger, in SQL that matches the rule for every name whose case Postgres folds as
 * JavaScript does (all of ASCII, and more under a UTF-8 locale).
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`alter table organizations add column name_key text`.execute(db)
  const rows = await sql<{ id: string, name: string }>`select id, name from organizations order by created_at, id`.execute(db)
  const taken = new Set<string>()
  for (const row of rows.rows) {
    const plain = nameKey(row.name)
    const key = taken.has(plain) ? `${plain}\n${row.id}` : plain
    taken.add(key)
    await sql`update organizations set name_key = ${key} where id = ${row.id}`.execute(db)
  }
  await sql.raw(String.raw`create function organizations_name_key() returns trigger language plpgsql as $$
    begin
      if new.name_key is null or (tg_op = 'UPDATE' and new.name is distinct from old.name and new.name_key is not distinct from old.name_key) then
        new.name_key := ${nameKeySql('new.name')};
      end if;
      return new;
    end
  $$`).execute(db)
  await sql`create trigger organizations_name_key before insert or update of name, name_key on organizations for each row execute function organizations_name_key()`.execute(db)
  await sql`alter table organizations alter column name_key set not null`.execute(db)
  await sql`create unique index organizations_name_key_idx on organizations (name_key)`.execute(db)
}

/** Drops the key, its index and its trigger; names are unique only as written again. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists organizations_name_key on organizations`.execute(db)
  await sql`drop function if exists organizations_name_key()`.execute(db)
  await sql`drop index if exists organizations_name_key_idx`.execute(db)
  await sql`alter table organizations drop column if exists name_key`.execute(db)
}

import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import { nameKey, nameKeySql } from './2026-12-08-0001-organization-name-keys.ts'

/** Rows keyed per statement: one round trip for many nodes, well under Postgres's parameter limit. */
const CHUNK = 500

/**
 * `nodes.name_key`, unique within an organization: what a node's name reads as (the rule
 * organizations use, migration 2026-12-08-0001: compatibility forms folded, invisible characters
 * dropped, spacing collapsed, case ignored), so "trainer" or "train\u200ber" cannot sit beside a
 * lab's "Trainer" on the ledger and model cards as another node. Existing rows are keyed here;
 * where two nodes of a lab already read the same, the one seen first keeps the key and each later
 * one gets the key, a line feed and its id, which no name's key can be (whitespace collapses to a
 * space), so this migration cannot fail; such a node keeps its name until it re-joins with
 * `--name`, when the coordinator gives it a free one. A row inserted or updated without a key (a
 * script, a test; a rename by hand sets name_key to null) gets it from a trigger.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`alter table nodes add column name_key text`.execute(db)
  const rows = await sql<{ id: string, organization_id: string, name: string }>`select id, organization_id, name from nodes order by first_seen_at, id`.execute(db)
  const taken = new Set<string>()
  const keyed = rows.rows.map((row) => {
    const plain = nameKey(row.name)
    const key = taken.has(`${row.organization_id}\n${plain}`) ? `${plain}\n${row.id}` : plain
    taken.add(`${row.organization_id}\n${key}`)
    return { id: row.id, key }
  })
  for (let at = 0; at < keyed.length; at += CHUNK) {
    const values = sql.join(keyed.slice(at, at + CHUNK).map((r) => sql`(${r.id}::uuid, ${r.key}::text)`))
    await sql`update nodes set name_key = v.key from (values ${values}) as v (id, key) where nodes.id = v.id`.execute(db)
  }
  await sql.raw(String.raw`create function nodes_name_key() returns trigger language plpgsql as $$
    begin
      -- Only a row given no key: the coordinator always writes its own (exact) key, and a rename
      -- that leaves the key as it was (a change of case) must not have it replaced by this
      -- approximation, which folds some scripts' case differently (a final sigma, or nothing at
      -- all under a C locale). A script that renames a node sets name_key to null to recompute it.
      if new.name_key is null then
        new.name_key := ${nameKeySql('new.name')};
      end if;
      return new;
    end
  $$`).execute(db)
  await sql`create trigger nodes_name_key before insert or update of name, name_key on nodes for each row execute function nodes_name_key()`.execute(db)
  await sql`alter table nodes alter column name_key set not null`.execute(db)
  await sql`create unique index nodes_organization_name_key_idx on nodes (organization_id, name_key)`.execute(db)
}

/** Drops the key, its index and its trigger; a lab's node names are unique only as typed again. */
export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger if exists nodes_name_key on nodes`.execute(db)
  await sql`drop function if exists nodes_name_key()`.execute(db)
  await sql`drop index if exists nodes_organization_name_key_idx`.execute(db)
  await sql`alter table nodes drop column if exists name_key`.execute(db)
}

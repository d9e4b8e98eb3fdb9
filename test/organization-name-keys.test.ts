// Migration 2026-12-08-0001 (organizations.name_key) on both backends: existing rows are keyed,
// rows that already read the same cannot make it fail, and it runs down and up again.
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import { createMigrator, migrations } from '@barnraise/migrations'
import type { Database } from '../coordinator/src/db/schema.ts'
import { CoordinatorError } from '../coordinator/src/errors.ts'
import { createOrganization } from '../coordinator/src/nodes/organizations.ts'
import { BACKENDS, migrationBefore } from './support/backends.ts'

const MIGRATION = '2026-12-08-0001-organization-name-keys'
/** The migration before this one, which the test goes back to. */
const BEFORE = migrationBefore(Object.keys(migrations), MIGRATION)


async function hasColumn (db: Kysely<Database>): Promise<boolean> {
  const result = await sql<{ n: number }>`select count(*)::int as n from information_schema.columns where table_name = 'organizations' and column_name = 'name_key'`.execute(db)
  return result.rows[0]!.n === 1
}

for (const backend of BACKENDS) {
  describe(`organizations.name_key on ${backend.name}`, () => {
    let db: Kysely<Database>
    let close: () => Promise<void>
    beforeAll(async () => { ({ db, close } = await backend.open()) })
    afterAll(async () => { await close() })

    test('existing rows are keyed; of names that read the same the oldest keeps the key and later ones get a suffix; down and up again', async () => {
      const migrator = createMigrator(db)
      assert.equal((await migrator.migrateTo(BEFORE)).error, undefined)
      assert.equal(await hasColumn(db), false)
      const insert = async (name: string, createdAt: string): Promise<string> =>
        (await sql<{ id: string }>`insert into organizations (name, created_at) values (${name}, ${createdAt}::timestamptz) returning id`.execute(db)).rows[0]!.id
      // Inserted newest first, so id or insertion order would pick the wrong one to keep the key.
      const loud = await insert('HILLTOP LAB', '2022-01-01T00:00:00Z')
      const spaced = await insert('Hilltop   Lab\u200b', '2021-01-01T00:00:00Z')
      const first = await insert('Hilltop Lab', '2020-01-01T00:00:00Z')
      const other = await insert('Ｖalley\u00a0Lab', '2020-06-01T00:00:00Z')

      const keys = async (): Promise<Record<string, string>> =>
        Object.fromEntries((await db.selectFrom('organizations').select(['id', 'name_key']).execute()).map((r) => [r.id, r.name_key]))
      const expected = { [first]: 'hilltop lab', [spaced]: `hilltop lab\n${spaced}`, [loud]: `hilltop lab\n${loud}`, [other]: 'valley lab' }
      const up = await migrator.migrateToLatest()
      assert.equal(up.error, undefined)
      assert.ok(up.results?.some((r) => r.migrationName === MIGRATION && r.status === 'Success'))
      assert.deepEqual(await keys(), expected)

      // The key is enforced: the name, however written, is taken.
      await assert.rejects(createOrganization(db, 'hilltop  LAB'), (err) => err instanceof CoordinatorError && err.code === 'ERR_NAME_TAKEN')
      await assert.rejects(db.insertInto('organizations').values({ name: 'Valley Lab' }).execute(), 'a row inserted without a key is keyed by the trigger, and unique')

      assert.equal((await migrator.migrateTo(BEFORE)).error, undefined)
      assert.equal(await hasColumn(db), false, 'down drops the column')
      await db.insertInto('organizations').values({ name: 'Valley Lab' }).execute()
      assert.equal((await migrator.migrateToLatest()).error, undefined, 'up again, with a new clash')
      const again = await keys()
      const valley = (await db.selectFrom('organizations').select('id').where('name', '=', 'Valley Lab').executeTakeFirstOrThrow()).id
      assert.deepEqual(again, { ...expected, [valley]: `valley lab\n${valley}` }, 'the same keys again, and the newer clash suffixed')
    })
  })
}

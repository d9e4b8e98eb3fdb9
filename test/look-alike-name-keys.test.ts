// Migration 2026-12-11-0001 (name keys fold other scripts' look-alike letters) on both backends:
// existing organizations and nodes are re-keyed, clashes among them cannot make it fail, the
// triggers fold too, and it runs down and up again.
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import { createMigrator, migrations } from '@barnraise/migrations'
import type { Database } from '../coordinator/src/db/schema.ts'
import { CoordinatorError } from '../coordinator/src/errors.ts'
import { createOrganization } from '../coordinator/src/nodes/organizations.ts'
import { BACKENDS, migrationBefore } from './support/backends.ts'

const MIGRATION = '2026-12-11-0001-look-alike-name-keys'
/** The migration before this one, which the test goes back to. */
const BEFORE = migrationBefore(Object.keys(migrations), MIGRATION)
/** "Apex" in Cyrillic letters (А р е х), and in Greek capitals (Α Ρ Ε Χ). */
const CYRILLIC_APEX = '\u0410\u0440\u0435\u0445'
const GREEK_APEX = '\u0391\u03a1\u0395\u03a7'

for (const backend of BACKENDS) {
  describe(`look-alike name keys on ${backend.name}`, () => {
    let db: Kysely<Database>
    let close: () => Promise<void>
    beforeAll(async () => { ({ db, close } = await backend.open()) })
    afterAll(async () => { await close() })

    test('existing organizations and nodes are re-keyed, the older of a look-alike pair keeping the key; new look-alikes are taken; down and up again', async () => {
      const migrator = createMigrator(db)
      assert.equal((await migrator.migrateTo(BEFORE)).error, undefined)
      const insertLab = async (name: string, createdAt: string): Promise<string> =>
        (await sql<{ id: string }>`insert into organizations (name, created_at) values (${name}, ${createdAt}::timestamptz) returning id`.execute(db)).rows[0]!.id
      // Newest first, so insertion order would pick the wrong one to keep the key.
      const lookAlike = await insertLab(`${CYRILLIC_APEX} Lab`, '2021-01-01T00:00:00Z')
      const apex = await insertLab('Apex Lab', '2020-01-01T00:00:00Z')
      const russian = await insertLab('Лаборатория', '2020-06-01T00:00:00Z')
      let peer = 0
      const insertNode = async (name: string, firstSeenAt: string): Promise<string> =>
        (await sql<{ id: string }>`insert into nodes (peer_id, organization_id, name, hardware, agent_version, first_seen_at)
          values (${`peer-${++peer}`}, ${apex}, ${name}, '{}'::jsonb, '0', ${firstSeenAt}::timestamptz) returning id`.execute(db)).rows[0]!.id
      const nodeLookAlike = await insertNode('\u0440\u0441-1', '2021-01-01T00:00:00Z')
      const node = await insertNode('pc-1', '2020-01-01T00:00:00Z')
      const before = { [apex]: 'apex lab', [lookAlike]: `${CYRILLIC_APEX.toLowerCase()} lab`, [russian]: 'лаборатория' }

      const keys = async (table: 'organizations' | 'nodes'): Promise<Record<string, string>> =>
        Object.fromEntries((await db.selectFrom(table).select(['id', 'name_key']).execute()).map((r) => [r.id, r.name_key]))
      assert.deepEqual(await keys('organizations'), before)
      const up = await migrator.migrateToLatest()
      assert.equal(up.error, undefined)
      assert.ok(up.results?.some((r) => r.migrationName === MIGRATION && r.status === 'Success'))
      // Л, б, и, я read as no Latin letter; а, о, р, т do.
      const expected = { [apex]: 'apex lab', [lookAlike]: `apex lab\n${lookAlike}`, [russian]: 'лaбopatopия' }
      assert.deepEqual(await keys('organizations'), expected)
      assert.deepEqual(await keys('nodes'), { [node]: 'pc-1', [nodeLookAlike]: `pc-1\n${nodeLookAlike}` })

      // New look-alikes are taken, through the coordinator and through the trigger alike; a name of its own is not.
      for (const name of [`${CYRILLIC_APEX} Lab`, `${GREEK_APEX} LAB`, 'ЛАБОРАТОРИЯ']) {
        await assert.rejects(createOrganization(db, name), (err) => err instanceof CoordinatorError && err.code === 'ERR_NAME_TAKEN' && /look-alike letters/.test(err.message), name)
      }
      await assert.rejects(db.insertInto('organizations').values({ name: `${GREEK_APEX} Lab` }).execute(), 'a row inserted without a key is keyed by the trigger, folded, and unique')
      await assert.rejects(sql`insert into nodes (peer_id, organization_id, name, hardware, agent_version) values ('peer-x', ${apex}, ${'\u0420\u0421-1'}, '{}'::jsonb, '0')`.execute(db), 'a node row without a key too')
      assert.equal((await createOrganization(db, 'Лаборатория Апекс')).name, 'Лаборатория Апекс')

      assert.equal((await migrator.migrateTo(BEFORE)).error, undefined)
      const extra = (await db.selectFrom('organizations').select('id').where('name', '=', 'Лаборатория Апекс').executeTakeFirstOrThrow()).id
      assert.deepEqual(await keys('organizations'), { ...before, [extra]: 'лаборатория апекс' }, 'down gives the earlier keys back')
      await db.insertInto('organizations').values({ name: `${GREEK_APEX} Lab` }).execute()
      assert.equal((await migrator.migrateToLatest()).error, undefined, 'up again, with a new clash')
      const greek = (await db.selectFrom('organizations').select('id').where('name', '=', `${GREEK_APEX} Lab`).executeTakeFirstOrThrow()).id
      assert.deepEqual(await keys('organizations'), { ...expected, [extra]: 'лaбopatopия aпekc', [greek]: `apex lab\n${greek}` })
    })
  })
}

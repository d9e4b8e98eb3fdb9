// Migration 2026-12-10-0001 (nodes.name_key) on both backends: existing rows are keyed per lab,
// nodes of a lab that already read the same cannot make it fail, and it runs down and up again.
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import { createMigrator, migrations } from '@barnraise/migrations'
import type { Database } from '../coordinator/src/db/schema.ts'
import { createOrganization } from '../coordinator/src/nodes/organizations.ts'
import { createEnrollmentToken } from '../coordinator/src/nodes/enrollment-tokens.ts'
import { enrollNode } from '../coordinator/src/nodes/nodes.ts'
import { BACKENDS, migrationBefore } from './support/backends.ts'

const MIGRATION = '2026-12-10-0001-node-name-keys'
/** The migration before this one, which the test goes back to. */
const BEFORE = migrationBefore(Object.keys(migrations), MIGRATION)

const hardware = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 2, memoryBytes: 1, gpus: [] }

async function hasColumn (db: Kysely<Database>): Promise<boolean> {
  const result = await sql<{ n: number }>`select count(*)::int as n from information_schema.columns where table_name = 'nodes' and column_name = 'name_key'`.execute(db)
  return result.rows[0]!.n === 1
}

for (const backend of BACKENDS) {
  describe(`nodes.name_key on ${backend.name}`, () => {
    let db: Kysely<Database>
    let close: () => Promise<void>
    beforeAll(async () => { ({ db, close } = await backend.open()) })
    afterAll(async () => { await close() })

    test('existing nodes are keyed; of a lab\'s names that read the same the first seen keeps the key and later ones get a suffix; down and up again', async () => {
      const lab = await createOrganization(db, 'Hilltop Lab')
      const other = await createOrganization(db, 'Valley Lab')
      const migrator = createMigrator(db)
      assert.equal((await migrator.migrateTo(BEFORE)).error, undefined)
      assert.equal(await hasColumn(db), false)
      let peer = 0
      const insert = async (organizationId: string, name: string, firstSeenAt: string): Promise<string> =>
        (await sql<{ id: string }>`insert into nodes (peer_id, organization_id, name, hardware, agent_version, first_seen_at)
          values (${`peer-${++peer}`}, ${organizationId}::uuid, ${name}, '{}'::jsonb, '1', ${firstSeenAt}::timestamptz) returning id`.execute(db)).rows[0]!.id
      // Inserted newest first, so id or insertion order would pick the wrong one to keep the key.
      const loud = await insert(lab.id, 'TRAINER', '2022-01-01T00:00:00Z')
      const hidden = await insert(lab.id, 'train\u200ber', '2021-01-01T00:00:00Z')
      const first = await insert(lab.id, 'Trainer', '2020-01-01T00:00:00Z')
      const elsewhere = await insert(other.id, 'trainer', '2023-01-01T00:00:00Z')

      const keys = async (): Promise<Record<string, string>> =>
        Object.fromEntries((await db.selectFrom('nodes').select(['id', 'name_key']).execute()).map((r) => [r.id, r.name_key]))
      const expected = { [first]: 'trainer', [hidden]: `trainer\n${hidden}`, [loud]: `trainer\n${loud}`, [elsewhere]: 'trainer' }
      const up = await migrator.migrateToLatest()
      assert.equal(up.error, undefined)
      assert.ok(up.results?.some((r) => r.migrationName === MIGRATION && r.status === 'Success'))
      assert.deepEqual(await keys(), expected, 'another lab\'s "trainer" keeps its key')

      // The key is enforced: a new node of the lab asking for the name, however written, gets another.
      const token = (await createEnrollmentToken(db, { organizationId: lab.id, limits: { maxUses: 2 } })).token
      const fresh = await enrollNode(db, 'peer-new', { type: 'enroll', agentVersion: '1', hardware, token, name: 'trainer' })
      assert.equal((await db.selectFrom('nodes').select('name').where('id', '=', fresh.nodeId).executeTakeFirstOrThrow()).name, 'trainer-2')
      // A clashing node that re-joins with its name is given a free one.
      await enrollNode(db, 'peer-1', { type: 'enroll', agentVersion: '1', hardware, name: 'TRAINER' })
      assert.equal((await db.selectFrom('nodes').select('name').where('id', '=', loud).executeTakeFirstOrThrow()).name, 'TRAINER-3')
      const rawInsert = (peerId: string, name: string): Promise<unknown> =>
        sql`insert into nodes (peer_id, organization_id, name, hardware, agent_version) values (${peerId}, ${lab.id}::uuid, ${name}, '{}'::jsonb, '1')`.execute(db)
      await assert.rejects(rawInsert('peer-raw', 'Trainer '), /nodes_organization_name_key_idx/, 'a row inserted without a key is keyed by the trigger, and unique within the lab')
      await rawInsert('peer-raw', 'Gpu  Box')
      assert.equal((await db.selectFrom('nodes').select('name_key').where('peer_id', '=', 'peer-raw').executeTakeFirstOrThrow()).name_key, 'gpu box')
      await db.deleteFrom('nodes').where('peer_id', '=', 'peer-raw').execute()

      assert.equal((await migrator.migrateTo(BEFORE)).error, undefined)
      assert.equal(await hasColumn(db), false, 'down drops the column')
      const raw = await insert(other.id, 'Trainer', '2024-01-01T00:00:00Z')
      assert.equal((await migrator.migrateToLatest()).error, undefined, 'up again, with a new clash')
      assert.deepEqual(await keys(), { ...expected, [loud]: 'trainer-3', [fresh.nodeId]: 'trainer-2', [raw]: `trainer\n${raw}` }, 'the same keys again, and the newer clash suffixed')
    })
  })
}

import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { sql } from 'kysely'
import { openDatabase } from '@barnraise/coordinator'
import type { Database } from '@barnraise/coordinator'
import { createMigrator, migrateDownToEmpty, migrateToLatest, migrations } from '@barnraise/migrations'
import type { Kysely } from 'kysely'
import pg from 'pg'
import { ADMIN_DATABASE_URL, createTestDatabase } from './support/postgres.ts'
import { BACKENDS } from './support/backends.ts'

const TABLES = ['assignments', 'blobs', 'checkpoints', 'datasets', 'enrollment_tokens', 'invitations', 'ledger', 'ledger_heads', 'nodes', 'organization_served_organizers', 'organization_served_runs', 'organizations', 'pledges', 'rounds', 'runs', 'scoring_tasks', 'sessions', 'users']

async function tables (db: Kysely<Database>): Promise<string[]> {
  const result = await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = 'public' and table_name not like 'barnraise_migrations%' order by table_name`.execute(db)
  return result.rows.map((r) => r.table_name)
}


for (const backend of BACKENDS) {
  describe(`storage on ${backend.name}`, () => {
    let db: Kysely<Database>
    let close: () => Promise<void>
    beforeAll(async () => { ({ db, close } = await backend.open()) })
    afterAll(async () => { await close() })

    test('migrations run up from empty, down to empty, and up again', async () => {
      assert.deepEqual(await tables(db), TABLES)
      const reverted = await migrateDownToEmpty(db)
      assert.deepEqual(reverted, Object.keys(migrations).reverse())
      assert.deepEqual(await tables(db), [])
      assert.deepEqual(await migrateToLatest(db), Object.keys(migrations))
      assert.deepEqual(await tables(db), TABLES)
      assert.deepEqual(await migrateToLatest(db), [], 'a second run applies nothing')
    })

    test('2026-12-06-0006 gives rows hashed before credited_devices existed their null back (0005 once copied devices in), and leaves later credits alone', async () => {
      const migrator = createMigrator(db)
      const down = await migrator.migrateTo('2026-12-06-0005-ledger-credited-devices')
      assert.equal(down.error, undefined)
      const run = await db.insertInto('runs').values({ name: 'm', spec: '{}', updated_at: new Date() }).returning('id').executeTakeFirstOrThrow()
      const row = (createdAt: string, credited: number) => sql`insert into ledger (run_id, round, peer_id, tokens, compute_seconds, outcome, prev_hash, hash, executor, devices, credited_devices, created_at)
        values (${run.id}, 1, 'p', 1, 1, 'accepted', ${'0'.repeat(64)}, ${String(credited).repeat(64)}, 'torch-cuda', 4, ${credited}, ${createdAt}::timestamptz)`.execute(db)
      await row('2020-01-01T00:00:00Z', 4)
      await row(new Date(Date.now() + 60_000).toISOString(), 2)
      const up = await migrator.migrateToLatest()
      assert.equal(up.error, undefined)
      const rows = await db.selectFrom('ledger').select(['credited_devices', 'credited_cores']).where('run_id', '=', run.id).orderBy('created_at').execute()
      assert.deepEqual(rows, [{ credited_devices: null, credited_cores: null }, { credited_devices: 2, credited_cores: null }])
    })

    test('constraints hold: run status and token use counts are checked by the database', async () => {
      const org = await db.insertInto('organizations').values({ name: 'constraint lab' }).returning('id').executeTakeFirstOrThrow()
      await assert.rejects(db.insertInto('runs').values({ name: 'r', status: 'bogus' as 'draft', spec: '{}', updated_at: new Date() }).execute())
      await assert.rejects(db.insertInto('enrollment_tokens').values({ organization_id: org.id, token_hash: 'x', max_uses: 0 }).execute())
      await assert.rejects(db.insertInto('organizations').values({ name: 'constraint lab' }).execute(), 'names are unique')
    })

    test('jsonb round-trips as parsed objects', async () => {
      const org = await db.insertInto('organizations').values({ name: 'json lab' }).returning('id').executeTakeFirstOrThrow()
      const hardware = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 2, memoryBytes: 1024, gpus: [{ name: 'g', memoryMiB: 10 }] }
      await db.insertInto('nodes').values({ peer_id: 'p1', organization_id: org.id, name: 'n', hardware: JSON.stringify(hardware), agent_version: '1', enrolled_with_token_id: null, first_seen_at: new Date(), last_seen_at: new Date() }).execute()
      const row = await db.selectFrom('nodes').select('hardware').where('peer_id', '=', 'p1').executeTakeFirstOrThrow()
      assert.deepEqual(row.hardware, hardware)
    })
  })
}

test('Postgres terminating an idle connection is reported and the next query reconnects; nothing crashes', async () => {
  const database = await createTestDatabase()
  const lost: Error[] = []
  const opened = await openDatabase({ dataDir: 'memory://unused', databaseUrl: database.url, onIdleError: (err) => { lost.push(err) } })
  try {
    assert.equal((await sql<{ one: number }>`select 1 as one`.execute(opened.db)).rows[0]!.one, 1)
    const name = new URL(database.url).pathname.slice(1)
    const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL })
    await admin.connect()
    try {
      await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name])
    } finally {
      await admin.end()
    }
    for (let i = 0; i < 100 && lost.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.ok(lost.length >= 1, 'the lost idle connection was reported')
    assert.equal((await sql<{ one: number }>`select 1 as one`.execute(opened.db)).rows[0]!.one, 1, 'and the next query ran on a new one')
  } finally {
    await opened.close()
    await database.drop()
  }
})

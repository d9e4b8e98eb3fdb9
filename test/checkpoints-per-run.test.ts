// Migration 2026-12-09-0001 (checkpoint rows keyed by run and round) on both backends: a run
// that lost its round-0 (or a later) row to an earlier run with the same weights gets it back, shared
// weights get one row per run, and it runs down and up again.
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import { createMigrator, migrations } from '@barnraise/migrations'
import type { Database } from '../coordinator/src/db/schema.ts'
import { BACKENDS, migrationBefore } from './support/backends.ts'

const MIGRATION = '2026-12-09-0001-checkpoints-per-run'
const BEFORE = migrationBefore(Object.keys(migrations), MIGRATION)
const INITIAL = 'a'.repeat(64)
const ROUND_1 = 'b'.repeat(64)

async function insertRun (db: Kysely<Database>, name: string, createdAt: string, currentRound: number, latest: string): Promise<string> {
  return (await sql<{ id: string }>`insert into runs (name, spec, updated_at, created_at, current_round, latest_checkpoint)
    values (${name}, '{}'::jsonb, now(), ${createdAt}::timestamptz, ${currentRound}, ${latest}) returning id`.execute(db)).rows[0]!.id
}

async function rows (db: Kysely<Database>): Promise<string[]> {
  const found = await db.selectFrom('checkpoints').innerJoin('runs', 'runs.id', 'checkpoints.run_id')
    .select(['runs.name', 'checkpoints.round', 'checkpoints.sha256', 'checkpoints.val_loss', 'checkpoints.tokens_seen', 'checkpoints.pruned_at']).orderBy('runs.name').orderBy('checkpoints.round').execute()
  return found.map((r) => `${r.name}:${r.round}:${r.sha256.slice(0, 1)}:${r.val_loss ?? '-'}:${r.tokens_seen}${r.pruned_at === null ? '' : ':pruned'}`)
}

for (const backend of BACKENDS) {
  describe(`checkpoints per run on ${backend.name}`, () => {
    let db: Kysely<Database>
    let close: () => Promise<void>
    beforeAll(async () => { ({ db, close } = await backend.open()) })
    afterAll(async () => { await close() })

    test('later runs with the same initial weights get their round-0 row back; shared weights get a row per run; down and up again', async () => {
      const migrator = createMigrator(db)
      assert.equal((await migrator.migrateTo(BEFORE)).error, undefined)
      // What the sha256 key made: the first run recorded the shared initial weights, the second
      // (one round in) and the third (not started) have no round-0 row.
      const first = await insertRun(db, 'first', '2026-01-01T00:00:00Z', 1, ROUND_1)
      const second = await insertRun(db, 'second', '2026-01-02T00:00:00Z', 1, 'c'.repeat(64))
      await insertRun(db, 'third', '2026-01-03T00:00:00Z', 0, INITIAL)
      await sql`insert into checkpoints (sha256, run_id, round, tokens_seen, val_loss) values (${INITIAL}, ${first}, 0, 0, 5.5), (${ROUND_1}, ${first}, 1, 100, 5.0), (${'c'.repeat(64)}, ${second}, 1, 100, 4.9)`.execute(db)
      // The second run's round 1 was abandoned once and opened again: two rows, one base.
      for (const status of ['abandoned', 'closed']) {
        await sql`insert into rounds (run_id, number, status, base_checkpoint, deadline_at) values (${second}, 1, ${status}, ${INITIAL}, now())`.execute(db)
      }
      await assert.rejects(sql`insert into checkpoints (sha256, run_id, round, tokens_seen) values (${INITIAL}, ${second}, 0, 0)`.execute(db), 'before: one row per sha256')
      // A twin of the first run, trained alike: its round 1 made the first run's round-1 weights
      // (no row), its round 2 its own. The initial weights are in the store, round 1's were pruned.
      const twin = await insertRun(db, 'twin', '2026-01-04T00:00:00Z', 2, 'e'.repeat(64))
      await sql`insert into rounds (run_id, number, status, base_checkpoint, deadline_at, result_checkpoint, tokens, val_loss, closed_at)
        values (${twin}, 1, 'closed', ${INITIAL}, now(), ${ROUND_1}, 100, 4.8, now()), (${twin}, 2, 'closed', ${ROUND_1}, now(), ${'e'.repeat(64)}, 50, 4.1, now())`.execute(db)
      await sql`insert into checkpoints (sha256, run_id, round, tokens_seen, val_loss) values (${'e'.repeat(64)}, ${twin}, 2, 150, 4.1)`.execute(db)
      await sql`insert into blobs (sha256, size, kind) values (${INITIAL}, 10, 'checkpoint')`.execute(db)

      const up = await migrator.migrateToLatest()
      assert.equal(up.error, undefined)
      assert.ok(up.results?.some((r) => r.migrationName === MIGRATION && r.status === 'Success'))
      const expected = ['first:0:a:5.5:0', 'first:1:b:5:100', 'second:0:a:-:0', 'second:1:c:4.9:100', 'third:0:a:-:0', 'twin:0:a:-:0', 'twin:1:b:4.8:100:pruned', 'twin:2:e:4.1:150']
      assert.deepEqual(await rows(db), expected, 'each run has its round 0, without a loss measured on another run\'s validation set, and its closed rounds from their round rows')
      await assert.rejects(sql`insert into checkpoints (sha256, run_id, round, tokens_seen) values (${'d'.repeat(64)}, ${first}, 1, 0)`.execute(db), 'one row per run and round')

      assert.equal((await migrator.migrateTo(BEFORE)).error, undefined)
      assert.deepEqual(await rows(db), ['first:0:a:5.5:0', 'first:1:b:5:100', 'second:1:c:4.9:100', 'twin:2:e:4.1:150'], 'down keeps the oldest row of shared weights')
      assert.equal((await migrator.migrateToLatest()).error, undefined)
      assert.deepEqual(await rows(db), expected, 'up again recovers the same rows')
    })
  })
}

import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * Checkpoint rows keyed by (run_id, round) instead of sha256. Runs with the same model and seed
 * start from the same weights, so a sha256 key let only the first of them record its round 0:
 * every later run had no initial checkpoint row, hence no round 0 in its checkpoint list, loss
 * curve or downloads. The weights stay shared (the blob store is content-addressed); only the
 * rows are per run. Each run missing its round-0 row gets it back from the base its round 1
 * trained from (or its latest checkpoint if no round opened yet), without a loss: the validation
 * sets of two runs need not be the same.
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`alter table checkpoints drop constraint checkpoints_pkey`.execute(db)
  // One row per (run, round) was already what the round loop wrote; this keeps the migration
  // from failing on a database where something else did not.
  await sql`delete from checkpoints a using checkpoints b
    where a.run_id = b.run_id and a.round = b.round and (a.created_at, a.sha256) > (b.created_at, b.sha256)`.execute(db)
  await sql`alter table checkpoints add primary key (run_id, round)`.execute(db)
  await sql`create index checkpoints_sha256_idx on checkpoints (sha256)`.execute(db)
  await sql`insert into checkpoints (sha256, run_id, round, tokens_seen, val_loss, created_at)
    select base, id, 0, 0, null, created_at from (
      select r.id, r.created_at, coalesce(
        (select base_checkpoint from rounds where run_id = r.id and number = 1 order by opened_at limit 1),
        case when r.current_round = 0 then r.latest_checkpoint end) as base
      from runs r
      where not exists (select 1 from checkpoints c where c.run_id = r.id and c.round = 0)
    ) missing where base is not null`.execute(db)
}

/** Keys rows by sha256 again, keeping the row of the oldest run of each shared checkpoint (as before). */
export async function down (db: Kysely<unknown>): Promise<void> {
  await sql`delete from checkpoints a using checkpoints b, runs ra, runs rb
    where a.sha256 = b.sha256 and ra.id = a.run_id and rb.id = b.run_id
      and (ra.created_at, a.run_id, a.round) > (rb.created_at, b.run_id, b.round)`.execute(db)
  await sql`alter table checkpoints drop constraint checkpoints_pkey`.execute(db)
  await sql`drop index checkpoints_sha256_idx`.execute(db)
  await sql`alter table checkpoints add primary key (sha256)`.execute(db)
}

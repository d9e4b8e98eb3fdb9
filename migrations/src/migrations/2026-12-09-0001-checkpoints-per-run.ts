import { sql } from 'kysely'
import type { Kysely } from 'kysely'

/**
 * Checkpoint rows keyed by (run_id, round) instead of sha256. Runs with the same model and seed
 * start from the same weights, so a sha256 key let only the first of them record its round 0:
 * every later run had no initial checkpoint row, hence no round 0 in its checkpoint list, loss
 * curve or downloads. The weights stay shared (the blob store is content-addressed); only the
 * rows are per run. Each run missing its round-0 row gets it back from the base its round 1
 * trained from (or its latest checkpoint if no round opened yet), without a loss: the validation
 * sets of two runs need not be the same. A closed round missing its row gets it back from the
 * round's own row (result, tokens, loss).
 */
export async function up (db: Kysely<unknown>): Promise<void> {
  await sql`alter table checkpoints drop constraint checkpoints_pkey`.execute(db)
  // One row per (run, round) was already what the round loop wrote; this keeps the migration
  // from failing on a database where something else did not.
  await sql`delete from checkpoints a using checkpoints b
    where a.run_id = b.run_id and a.round = b.round and (a.created_at, a.sha256) > (b.created_at, b.sha256)`.execute(db)
  await sql`alter table checkpoints add primary key (run_id, round)`.execute(db)
  await sql`create index checkpoints_sha256_idx on checkpoints (sha256)`.execute(db)
  // Weights no longer in the store (another run's retention deleted them) come back as pruned.
  await sql`insert into checkpoints (sha256, run_id, round, tokens_seen, val_loss, created_at, pruned_at)
    select base, id, 0, 0, null, created_at, case when exists (select 1 from blobs where blobs.sha256 = base) then null else now() end from (
      select r.id, r.created_at, coalesce(
        (select base_checkpoint from rounds where run_id = r.id and number = 1 order by opened_at limit 1),
        case when r.current_round = 0 then r.latest_checkpoint end) as base
      from runs r
      where not exists (select 1 from checkpoints c where c.run_id = r.id and c.round = 0)
    ) missing where base is not null`.execute(db)
  // A closed round whose weights matched an existing row (twin runs trained alike, or a round
  // that changed nothing) lost its row the same way: its round row says what it was.
  await sql`insert into checkpoints (sha256, run_id, round, tokens_seen, val_loss, created_at, pruned_at)
    select distinct on (r.run_id, r.number) r.result_checkpoint, r.run_id, r.number,
      (select coalesce(sum(done.tokens), 0) from rounds done where done.run_id = r.run_id and done.status = 'closed' and done.number <= r.number),
      r.val_loss, coalesce(r.closed_at, r.opened_at),
      case when exists (select 1 from blobs where blobs.sha256 = r.result_checkpoint) then null else now() end
    from rounds r
    where r.status = 'closed' and r.result_checkpoint is not null
      and not exists (select 1 from checkpoints c where c.run_id = r.run_id and c.round = r.number)
    order by r.run_id, r.number, r.closed_at`.execute(db)
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

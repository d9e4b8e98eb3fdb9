import { Migrator } from 'kysely'
import type { Kysely, Migration, MigrationProvider, MigrationResultSet } from 'kysely'
import * as initial from './migrations/2026-11-22-0001-initial.ts'
import * as training from './migrations/2026-11-22-0002-training.ts'
import * as accounts from './migrations/2026-11-22-0003-accounts-and-pledges.ts'
import * as checkpointRetention from './migrations/2026-11-22-0004-checkpoint-retention.ts'
import * as cpuPledges from './migrations/2026-11-23-0001-cpu-pledges-and-baselines.ts'
import * as ledgerExecutor from './migrations/2026-11-23-0002-ledger-executor.ts'
import * as ledgerHeads from './migrations/2026-11-23-0003-ledger-heads.ts'
import * as labServing from './migrations/2026-11-23-0005-lab-serving.ts'
import * as invitations from './migrations/2026-11-23-0006-invitations.ts'
import * as scoresAndQuarantine from './migrations/2026-12-04-0001-scores-and-quarantine.ts'
import * as redundantUnits from './migrations/2026-12-04-0002-redundant-units.ts'
import * as reportSketches from './migrations/2026-12-04-0003-report-sketches.ts'
import * as scoringTasks from './migrations/2026-12-04-0004-scoring-tasks.ts'
import * as datasets from './migrations/2026-12-05-0001-datasets.ts'
import * as overlappedRounds from './migrations/2026-12-05-0002-overlapped-rounds.ts'
import * as assignmentLookups from './migrations/2026-12-05-0003-assignment-lookups.ts'
import * as roundAggregates from './migrations/2026-12-05-0004-round-aggregates.ts'
import * as codecChoice from './migrations/2026-12-06-0001-codec-choice.ts'
import * as runsAwaitingData from './migrations/2026-12-06-0002-runs-awaiting-data.ts'
import * as broadcastResidual from './migrations/2026-12-06-0003-broadcast-residual.ts'
import * as ledgerDevices from './migrations/2026-12-06-0004-ledger-devices.ts'
import * as creditedDevices from './migrations/2026-12-06-0005-ledger-credited-devices.ts'
import * as creditedCores from './migrations/2026-12-06-0006-ledger-credited-cores.ts'
import * as unitTurnaround from './migrations/2026-12-07-0001-unit-turnaround-and-cut-requeues.ts'
import * as computeTimeline from './migrations/2026-12-07-0002-node-compute-timeline.ts'
import * as ledgerAssignmentIndex from './migrations/2026-12-07-0003-ledger-assignment-index.ts'
import * as organizationNameKeys from './migrations/2026-12-08-0001-organization-name-keys.ts'
import * as checkpointsPerRun from './migrations/2026-12-09-0001-checkpoints-per-run.ts'
import * as nodeNameKeys from './migrations/2026-12-10-0001-node-name-keys.ts'
import * as lookAlikeNameKeys from './migrations/2026-12-11-0001-look-alike-name-keys.ts'

/** Every migration, keyed by its dated name; kysely applies them in key order. */
export const migrations: Record<string, Migration> = {
  '2026-11-22-0001-initial': initial,
  '2026-11-22-0002-training': training,
  '2026-11-22-0003-accounts-and-pledges': accounts,
  '2026-11-22-0004-checkpoint-retention': checkpointRetention,
  '2026-11-23-0001-cpu-pledges-and-baselines': cpuPledges,
  '2026-11-23-0002-ledger-executor': ledgerExecutor,
  '2026-11-23-0003-ledger-heads': ledgerHeads,
  '2026-11-23-0005-lab-serving': labServing,
  '2026-11-23-0006-invitations': invitations,
  '2026-12-04-0001-scores-and-quarantine': scoresAndQuarantine,
  '2026-12-04-0002-redundant-units': redundantUnits,
  '2026-12-04-0003-report-sketches': reportSketches,
  '2026-12-04-0004-scoring-tasks': scoringTasks,
  '2026-12-05-0001-datasets': datasets,
  '2026-12-05-0002-overlapped-rounds': overlappedRounds,
  '2026-12-05-0003-assignment-lookups': assignmentLookups,
  '2026-12-05-0004-round-aggregates': roundAggregates,
  '2026-12-06-0001-codec-choice': codecChoice,
  '2026-12-06-0002-runs-awaiting-data': runsAwaitingData,
  '2026-12-06-0003-broadcast-residual': broadcastResidual,
  '2026-12-06-0004-ledger-devices': ledgerDevices,
  '2026-12-06-0005-ledger-credited-devices': creditedDevices,
  '2026-12-06-0006-ledger-credited-cores': creditedCores,
  '2026-12-07-0001-unit-turnaround-and-cut-requeues': unitTurnaround,
  '2026-12-07-0002-node-compute-timeline': computeTimeline,
  '2026-12-07-0003-ledger-assignment-index': ledgerAssignmentIndex,
  '2026-12-08-0001-organization-name-keys': organizationNameKeys,
  '2026-12-09-0001-checkpoints-per-run': checkpointsPerRun,
  '2026-12-10-0001-node-name-keys': nodeNameKeys,
  '2026-12-11-0001-look-alike-name-keys': lookAlikeNameKeys
}

/**
 * The name-key rule the newest name-key migration keyed every row with: what organizations' and
 * nodes' names read as. The coordinator keys new names with it, so stored and new keys always
 * follow one rule; changing the rule means a migration that re-keys the rows and is exported here.
 */
export { nameKey, LOOK_ALIKES } from './migrations/2026-12-11-0001-look-alike-name-keys.ts'

/** Raised when a migration fails; names the migration so the operator knows where to look. */
export class MigrationError extends Error {
  readonly code = 'ERR_MIGRATION_FAILED'
  readonly migration: string | undefined
  constructor (migration: string | undefined, cause: unknown) {
    super(`migration ${migration ?? '(unknown)'} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
    this.name = 'MigrationError'
    this.migration = migration
  }
}

const provider: MigrationProvider = { getMigrations: async () => migrations }

/** Creates a migrator over the project's migrations for any Postgres-speaking kysely. */
export function createMigrator (db: Kysely<any>): Migrator {
  return new Migrator({ db, provider, migrationTableName: 'barnraise_migrations', migrationLockTableName: 'barnraise_migrations_lock' })
}

function check (result: MigrationResultSet): string[] {
  if (result.error !== undefined) {
    const failed = result.results?.find((r) => r.status === 'Error')
    throw new MigrationError(failed?.migrationName, result.error)
  }
  return (result.results ?? []).map((r) => r.migrationName)
}

/** Applies every pending migration; returns the names applied. */
export async function migrateToLatest (db: Kysely<any>): Promise<string[]> {
  return check(await createMigrator(db).migrateToLatest())
}

/** Reverts every migration, newest first; returns the names reverted. */
export async function migrateDownToEmpty (db: Kysely<any>): Promise<string[]> {
  const migrator = createMigrator(db)
  const reverted: string[] = []
  for (;;) {
    const names = check(await migrator.migrateDown())
    if (names.length === 0) return reverted
    reverted.push(...names)
  }
}

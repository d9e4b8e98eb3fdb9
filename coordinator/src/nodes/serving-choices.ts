import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database, ServePolicy } from '../db/schema.ts'
import { CoordinatorError } from '../errors.ts'

/** What a lab's machines train: the policy and, under `chosen`, the runs and organizers it picked. */
export interface ServingChoices {
  serves: ServePolicy
  runs: Array<{ id: string, name: string, status: string }>
  organizers: Array<{ id: string, displayName: string }>
}

/** What a lab can pick from: runs not yet finished, and the install's organizers (names only). */
export interface ServingCandidates {
  runs: Array<{ id: string, name: string, status: string, owner: string | null }>
  organizers: Array<{ id: string, displayName: string }>
}

/** A lab's current choices. */
export async function servingChoices (db: Kysely<Database>, organizationId: string): Promise<ServingChoices> {
  const org = await db.selectFrom('organizations').select('serves').where('id', '=', organizationId).executeTakeFirst()
  if (org === undefined) throw new CoordinatorError('ERR_NOT_FOUND', 'no such organization')
  const runs = await db.selectFrom('organization_served_runs').innerJoin('runs', 'runs.id', 'organization_served_runs.run_id')
    .select(['runs.id', 'runs.name', 'runs.status']).where('organization_served_runs.organization_id', '=', organizationId)
    .orderBy('runs.name').execute()
  const organizers = await db.selectFrom('organization_served_organizers').innerJoin('users', 'users.id', 'organization_served_organizers.user_id')
    .select(['users.id', 'users.display_name']).where('organization_served_organizers.organization_id', '=', organizationId)
    .orderBy('users.display_name').execute()
  return { serves: org.serves, runs, organizers: organizers.map((o) => ({ id: o.id, displayName: o.display_name })) }
}

/** Runs and organizers a lab may choose. */
export async function servingCandidates (db: Kysely<Database>): Promise<ServingCandidates> {
  const runs = await db.selectFrom('runs').leftJoin('users', 'users.id', 'runs.created_by')
    .select(['runs.id', 'runs.name', 'runs.status', 'users.display_name']).where('runs.status', 'not in', ['completed', 'failed'])
    .orderBy('runs.created_at', 'desc').limit(500).execute()
  const organizers = await db.selectFrom('users').select(['id', 'display_name'])
    .where(sql<boolean>`roles && array['organizer', 'admin']::text[]`).orderBy('display_name').limit(500).execute()
  return {
    runs: runs.map((r) => ({ id: r.id, name: r.name, status: r.status, owner: r.display_name })),
    organizers: organizers.map((o) => ({ id: o.id, displayName: o.display_name }))
  }
}

/** Replaces a lab's choices; every listed run and organizer must exist. */
export async function setServingChoices (db: Kysely<Database>, organizationId: string, input: { serves: ServePolicy, runIds: string[], organizerIds: string[] }): Promise<ServingChoices> {
  const runIds = [...new Set(input.runIds)]
  const organizerIds = [...new Set(input.organizerIds)]
  await db.transaction().execute(async (trx) => {
    if (runIds.length > 0) {
      const found = await trx.selectFrom('runs').select('id').where('id', 'in', runIds).execute()
      if (found.length !== runIds.length) throw new CoordinatorError('ERR_INVALID_INPUT', 'one of the chosen runs does not exist')
    }
    if (organizerIds.length > 0) {
      const found = await trx.selectFrom('users').select('id').where('id', 'in', organizerIds)
        .where(sql<boolean>`roles && array['organizer', 'admin']::text[]`).execute()
      if (found.length !== organizerIds.length) throw new CoordinatorError('ERR_INVALID_INPUT', 'one of the chosen organizers is not an organizer here')
    }
    const updated = await trx.updateTable('organizations').set({ serves: input.serves }).where('id', '=', organizationId).executeTakeFirst()
    if (Number(updated.numUpdatedRows) === 0) throw new CoordinatorError('ERR_NOT_FOUND', 'no such organization')
    await trx.deleteFrom('organization_served_runs').where('organization_id', '=', organizationId).execute()
    await trx.deleteFrom('organization_served_organizers').where('organization_id', '=', organizationId).execute()
    if (runIds.length > 0) {
      await trx.insertInto('organization_served_runs').values(runIds.map((id) => ({ organization_id: organizationId, run_id: id }))).execute()
    }
    if (organizerIds.length > 0) {
      await trx.insertInto('organization_served_organizers').values(organizerIds.map((id) => ({ organization_id: organizationId, user_id: id }))).execute()
    }
  })
  return await servingChoices(db, organizationId)
}

/**
 * The organizations whose nodes may train this run: those serving every run, those that chose
 * it or its owner, and the owner's own organization.
 */
export async function organizationsServing (db: Kysely<Database>, runId: string): Promise<Set<string>> {
  const run = await db.selectFrom('runs').leftJoin('users', 'users.id', 'runs.created_by')
    .select(['runs.created_by', 'users.organization_id']).where('runs.id', '=', runId).executeTakeFirst()
  if (run === undefined) return new Set()
  const all = await db.selectFrom('organizations').select('id').where('serves', '=', 'all').execute()
  const chosen = await db.selectFrom('organization_served_runs').select('organization_id as id').where('run_id', '=', runId).execute()
  const byOwner = run.created_by === null
    ? []
    : await db.selectFrom('organization_served_organizers').select('organization_id as id').where('user_id', '=', run.created_by).execute()
  const ids = new Set([...all, ...chosen, ...byOwner].map((r) => r.id))
  if (run.organization_id !== null) ids.add(run.organization_id)
  return ids
}

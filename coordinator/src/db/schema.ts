import type { ColumnType, Generated } from 'kysely'
import type { HardwareProfile } from '@barnraise/protocol'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
/** jsonb columns: pg and PGlite both return parsed JSON; we always write JSON text. */
type Json<T> = ColumnType<T, string, string>

export interface OrganizationsTable {
  id: Generated<string>
  name: string
  created_at: Generated<Date>
}

export interface UsersTable {
  id: Generated<string>
  email: string
  display_name: string
  password_hash: string
  organization_id: string | null
  roles: ColumnType<string[], string[] | undefined, string[]>
  created_at: Generated<Date>
}

export interface EnrollmentTokensTable {
  id: Generated<string>
  organization_id: string
  token_hash: string
  label: string | null
  max_uses: ColumnType<number, number | undefined, number>
  used_count: ColumnType<number, number | undefined, number>
  expires_at: NullableTimestamp
  revoked_at: NullableTimestamp
  created_by: string | null
  created_at: Generated<Date>
}

export interface NodesTable {
  id: Generated<string>
  peer_id: string
  organization_id: string
  name: string
  hardware: Json<HardwareProfile>
  agent_version: string
  enrolled_with_token_id: string | null
  first_seen_at: Timestamp
  last_seen_at: Timestamp
  revoked_at: NullableTimestamp
}

export type RunStatus = 'draft' | 'running' | 'paused' | 'completed' | 'failed'

export interface RunsTable {
  id: Generated<string>
  name: string
  status: ColumnType<RunStatus, RunStatus | undefined, RunStatus>
  spec: Json<unknown>
  failure_reason: string | null
  created_by: string | null
  created_at: Generated<Date>
  updated_at: Timestamp
}

/** Every table the coordinator reads or writes, as kysely sees them. */
export interface Database {
  organizations: OrganizationsTable
  users: UsersTable
  enrollment_tokens: EnrollmentTokensTable
  nodes: NodesTable
  runs: RunsTable
}

import type { ColumnType, Generated } from 'kysely'
import type { CodecName, HardwareProfile, ReportHeader } from '@barnraise/protocol'
import type { StoredRunSpec } from '../runs/runs.ts'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>
/** jsonb columns: pg and PGlite both return parsed JSON; we always write JSON text. */
type Json<T> = ColumnType<T, string, string>

/** Which runs a lab's nodes train: every running run, or only those it chose. */
export type ServePolicy = 'all' | 'chosen'

export interface OrganizationsTable {
  id: Generated<string>
  name: string
  /**
   * `nameKey(name)` (nodes/name-key.ts), unique: names people would read as the same share it. The
   * coordinator always writes it; a row inserted without it gets a close SQL approximation
   * from a trigger (migration 2026-12-08-0001).
   */
  name_key: ColumnType<string, string | undefined, string>
  created_at: Generated<Date>
  serves: ColumnType<ServePolicy, ServePolicy | undefined, ServePolicy>
}

export interface InvitationsTable {
  id: Generated<string>
  code_hash: string
  role: 'organizer' | 'lab_admin' | 'funder'
  organization_id: string | null
  created_by: string | null
  max_uses: ColumnType<number, number | undefined, number>
  used_count: ColumnType<number, number | undefined, number>
  expires_at: Timestamp
  revoked_at: NullableTimestamp
  created_at: Generated<Date>
}

export interface OrganizationServedRunsTable {
  organization_id: string
  run_id: string
  created_at: Generated<Date>
}

export interface OrganizationServedOrganizersTable {
  organization_id: string
  user_id: string
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
  /**
   * `nameKey(name)` (nodes/name-key.ts), unique within the organization: two nodes of a lab
   * cannot read as the same name. The coordinator always writes it; a row inserted without it
   * gets a close SQL approximation from a trigger (migration 2026-12-10-0001).
   */
  name_key: ColumnType<string, string | undefined, string>
  hardware: Json<HardwareProfile>
  agent_version: string
  enrolled_with_token_id: string | null
  first_seen_at: Timestamp
  last_seen_at: Timestamp
  revoked_at: NullableTimestamp
  /** set while the node's reports are scored but neither folded nor credited (see nodes/reputation.ts) */
  quarantined_at: NullableTimestamp
  quarantine_reason: string | null
  /** the last release from quarantine: flags before it no longer count */
  reviewed_at: NullableTimestamp
  reviewed_by: string | null
  /** report bytes a second, as the coordinator measured this node's uploads (an average); null before one was measured */
  upload_bytes_per_second: number | null
  /** where this node's claimed compute, laid end to end, ends so far (ledger/compute-time.ts); null before its first claim */
  credited_until: NullableTimestamp
}

export type RunStatus = 'draft' | 'running' | 'paused' | 'completed' | 'failed'

export interface RunsTable {
  id: Generated<string>
  name: string
  status: ColumnType<RunStatus, RunStatus | undefined, RunStatus>
  spec: Json<StoredRunSpec>
  failure_reason: string | null
  created_by: string | null
  created_at: Generated<Date>
  updated_at: Timestamp
  current_round: ColumnType<number, number | undefined, number>
  tokens_seen: ColumnType<number, number | undefined, number>
  latest_checkpoint: string | null
  /** sha256 of the outer optimizer's momentum buffer blob */
  outer_state: string | null
  /** sha256 of what the run's sparse broadcasts left out so far (sparse-broadcast.ts); null: none */
  broadcast_residual: ColumnType<string | null, string | null | undefined, string | null>
  data_cursor: ColumnType<DataCursor, string | undefined, string>
  /** nats/token of the training data's unigram model on the validation windows; null until first computed */
  unigram_baseline: ColumnType<number | null, number | null | undefined, number | null>
  /** the dataset a run launched before it was tokenized waits for; null once its shards are in the spec */
  awaiting_dataset: ColumnType<string | null, string | null | undefined, string | null>
  /** the organizer started a run still awaiting its dataset: it starts when the dataset is ready */
  start_when_ready: ColumnType<boolean, boolean | undefined, boolean>
}

/** Where the next work unit's tokens start in a run's train shards. */
export interface DataCursor { epoch: number, shard: number, offset: number }

export type BlobKind = 'checkpoint' | 'shard' | 'report' | 'optimizer' | 'tokenizer' | 'documents' | 'update'

export interface BlobsTable {
  sha256: string
  size: number
  kind: BlobKind
  meta: ColumnType<Record<string, unknown>, string | undefined, string>
  created_at: Generated<Date>
}

export type RoundStatus = 'open' | 'closed' | 'abandoned'

export interface RoundsTable {
  id: Generated<string>
  run_id: string
  number: number
  status: RoundStatus
  base_checkpoint: string
  opened_at: Generated<Date>
  deadline_at: Timestamp
  closed_at: NullableTimestamp
  close_reason: string | null
  result_checkpoint: string | null
  /** the checkpoint the outer step started from (null before overlapped rounds: it was base_checkpoint) */
  applied_to: string | null
  /** sha256 of the round's mean update as encoded (int8) and applied, when nodes rebuild from it rather than from the reports */
  update_blob: string | null
  tokens: ColumnType<number, number | undefined, number>
  train_loss: number | null
  val_loss: number | null
}

/** `held`: reported and checked, waiting for its twin unit's report to be compared with (redundancy). */
export type AssignmentStatus = 'assigned' | 'held' | 'accepted' | 'refused' | 'expired'

export interface AssignmentsTable {
  id: Generated<string>
  run_id: string
  round_id: string
  node_id: string
  ranges: Json<Array<{ shard: string, start: number, end: number }>>
  tokens: number
  status: AssignmentStatus
  /** true once an expired unit's ranges went back into the pool and were handed out again (all of them) */
  requeued: ColumnType<boolean, boolean | undefined, boolean>
  /** inner steps of this expired or refused unit handed out again so far, to nodes that took a part of it (rounds/requeue.ts) */
  requeued_steps: ColumnType<number, number | undefined, number>
  report_blob: string | null
  created_at: Generated<Date>
  resolved_at: NullableTimestamp
  /** when the coordinator had the bytes of a report for this unit (the latest, while the unit was open); sizing measures turnaround to here */
  reported_at: NullableTimestamp
  /** the unit this one doubles (same ranges, seed and recipe) for a redundancy check; null for most */
  twin_of: string | null
  /** a held report's signed header and score, until it is settled */
  held_report: Json<HeldReport> | null
  /** the accepted report's count sketch (little-endian float32s) in runs that screen; only the latest few hundred are kept */
  sketch: Buffer | null
  /** this unit's inner steps when the run sizes units by throughput; null: the run's */
  inner_steps: number | null
  /** the codec this unit was handed out in, when the run allows several and it is not the run's own; null: the run's */
  codec: CodecName | null
  /** where its report's claimed compute was placed on its node's timeline (ledger/compute-time.ts); null before a report was admitted */
  compute_from: NullableTimestamp
  /** how many seconds that placed claim was: a re-sent report claiming more is placed afresh */
  compute_claimed_seconds: ColumnType<number | null, number | null | undefined, number | null>
}

/** One node's scoring of another node's held report (models too large for the coordinator to score). */
export interface ScoringTasksTable {
  id: Generated<string>
  run_id: string
  round_id: string
  /** the report being scored */
  assignment_id: string
  /** the scoring node */
  node_id: string
  /** the shard of scoring windows the task names (served to the scoring node) */
  windows_blob: string
  status: 'assigned' | 'done' | 'expired'
  base_loss: number | null
  after_loss: number | null
  reversed_loss: number | null
  created_at: Generated<Date>
  resolved_at: NullableTimestamp
}

/** What a held report's ledger row needs once it is settled. */
export interface HeldReport {
  header: ReportHeader
  score: number | null
  /** held for node scoring (not for a redundancy twin) until its scoring tasks are done */
  awaitingScores?: boolean
}

export interface CheckpointsTable {
  sha256: string
  run_id: string
  round: number
  tokens_seen: number
  val_loss: number | null
  created_at: Generated<Date>
  /** set when retention deleted the weights; the row stays so the run's history stays whole */
  pruned_at: NullableTimestamp
}

export interface LedgerTable {
  seq: Generated<number>
  run_id: string
  round: number
  node_id: string | null
  peer_id: string
  organization_id: string | null
  assignment_id: string | null
  tokens: number
  compute_seconds: number
  outcome: 'accepted' | 'refused'
  reason: string | null
  /** the signed report metadata, canonical JSON text */
  metadata: string | null
  signature: string | null
  prev_hash: string
  hash: string
  created_at: Generated<Date>
  /** what trained the report (typescript, torch-cpu, torch-cuda); null on rows from before reports said */
  executor: string | null
  /** devices that trained the report together, as signed (report v3); null: one */
  devices: ColumnType<number | null, number | null | undefined, number | null>
  /** how many of `devices` the coordinator credits from the row's throughput (ledger/device-credit.ts); null with devices */
  credited_devices: ColumnType<number | null, number | null | undefined, number | null>
  /** CPU cores credited to an accepted row counted as CPU time, from its throughput (ledger/device-credit.ts); 0 for GPU time; null on refused and older rows */
  credited_cores: ColumnType<number | null, number | null | undefined, number | null>
  /** loss removed on held-out data, as the coordinator measured it; null where not scored */
  score: number | null
}

/** A ledger head the coordinator signed at a round close (see protocol's ledgerHeadSchema). */
export interface LedgerHeadsTable {
  id: Generated<number>
  run_id: string
  round: number
  seq: number
  rows: number
  hash: string
  signed_at: string
  coordinator: string
  signature: string
  created_at: Generated<Date>
}

/** Every table the coordinator reads or writes, as kysely sees them. */
export interface Database {
  organizations: OrganizationsTable
  organization_served_runs: OrganizationServedRunsTable
  invitations: InvitationsTable
  organization_served_organizers: OrganizationServedOrganizersTable
  users: UsersTable
  enrollment_tokens: EnrollmentTokensTable
  nodes: NodesTable
  runs: RunsTable
  blobs: BlobsTable
  rounds: RoundsTable
  assignments: AssignmentsTable
  checkpoints: CheckpointsTable
  ledger: LedgerTable
  ledger_heads: LedgerHeadsTable
  scoring_tasks: ScoringTasksTable
  datasets: DatasetsTable
  sessions: SessionsTable
  pledges: PledgesTable
}

export type DatasetStatus = 'uploading' | 'tokenizing' | 'ready' | 'failed'

/** A dataset uploaded in pieces and tokenized by a worker into shards (coordinator/src/datasets). */
export interface DatasetsTable {
  id: Generated<string>
  name: string
  created_by: string
  status: DatasetStatus
  format: 'text' | 'jsonl' | 'parquet'
  field: string | null
  /** a catalogue tokenizer's name or sha256:<hex> of an uploaded tokenizer.json blob */
  tokenizer: string
  file_name: string
  file_bytes: number
  received_bytes: ColumnType<number, number | undefined, number>
  read_bytes: ColumnType<number, number | undefined, number>
  documents: ColumnType<number, number | undefined, number>
  bad_rows: ColumnType<number, number | undefined, number>
  bad_row_examples: ColumnType<Array<{ locator: string, reason: string }>, string | undefined, string>
  train_tokens: ColumnType<number, number | undefined, number>
  validation_tokens: ColumnType<number, number | undefined, number>
  train_shards: ColumnType<Array<{ sha256: string, tokens: number }>, string | undefined, string>
  validation_shard: string | null
  /** sha256 of the gzipped document index blob */
  document_index: string | null
  error: string | null
  created_at: Generated<Date>
  updated_at: ColumnType<Date, Date | undefined, Date>
}

export interface SessionsTable {
  token_hash: string
  user_id: string
  created_at: Generated<Date>
  expires_at: Timestamp
}

export type PledgeKind = 'usd' | 'gpu_hours' | 'cpu_core_hours'

export interface PledgesTable {
  id: Generated<string>
  run_id: string
  user_id: string
  organization_id: string | null
  kind: PledgeKind
  amount: number
  note: string | null
  created_at: Generated<Date>
}

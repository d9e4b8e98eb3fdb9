import type { Kysely } from 'kysely'
import type { HardwareProfile } from '@barnraise/protocol'
import type { Database } from '../db/schema.ts'
import { deviceHours } from '../ledger/device-hours.ts'
import type { DeviceKind } from '../ledger/device-hours.ts'
import type { DeliveredRow } from './pledge-fulfilment.ts'

/** One accepted ledger row with who delivered it and what its time counts as. */
export interface RunDelivery extends DeliveredRow {
  round: number
  nodeId: string | null
  nodeName: string
  peerId: string
  organizationName: string
  computeSeconds: number
  /** the node's claimed device, e.g. "NVIDIA H100" or "16 CPU cores (AMD EPYC 7B13)" */
  device: string
}

/** "NVIDIA H100 × 2" for GPU nodes, "8 CPU cores (Intel Xeon)" otherwise. */
export function describeDevice (hardware: HardwareProfile | null, kind: DeviceKind): string {
  if (hardware === null) return 'unknown machine'
  if (kind === 'gpu') {
    const names = [...new Set(hardware.gpus.map((g) => g.name))]
    return `${names.join(', ')}${hardware.gpus.length > 1 ? ` × ${hardware.gpus.length}` : ''}`
  }
  return `${hardware.cpuCores} CPU core${hardware.cpuCores === 1 ? '' : 's'} (${hardware.cpuModel})`
}

/** Ids per `in (…)` list: far below Postgres's 65,535 parameters a statement. */
const IDS_PER_QUERY = 1000

/** `ids` in lists of at most IDS_PER_QUERY, for lookups by id. */
function chunks (ids: string[]): string[][] {
  const out: string[][] = []
  for (let i = 0; i < ids.length; i += IDS_PER_QUERY) out.push(ids.slice(i, i + IDS_PER_QUERY))
  return out
}

/**
 * A run's accepted ledger rows in chain order, each priced in GPU-hours or CPU core-hours;
 * only those of `scope.organizationIds` and written after `scope.after` when given, so a
 * long run's readers load the rows they need rather than all of them. Rows come without
 * their node's profile or names, which are read once per node and organization: joined onto
 * every row, the profile's JSON made this three times slower (94,500 rows took a second).
 */
export async function loadRunDeliveries (db: Kysely<Database>, runId: string, scope: { organizationIds?: string[], after?: Date } = {}): Promise<RunDelivery[]> {
  if (scope.organizationIds?.length === 0) return []
  let query = db.selectFrom('ledger')
    .select(['seq', 'round', 'created_at', 'node_id', 'peer_id', 'organization_id', 'tokens', 'compute_seconds', 'executor', 'devices', 'credited_devices', 'credited_cores'])
    .where('run_id', '=', runId).where('outcome', '=', 'accepted')
  if (scope.organizationIds !== undefined) query = query.where('organization_id', 'in', scope.organizationIds)
  if (scope.after !== undefined) query = query.where('created_at', '>', scope.after)
  const rows = await query.orderBy('seq').execute()
  const nodeIds = [...new Set(rows.map((r) => r.node_id).filter((id): id is string => id !== null))]
  const orgIds = [...new Set(rows.map((r) => r.organization_id).filter((id): id is string => id !== null))]
  const nodes = new Map<string, { name: string, hardware: HardwareProfile | null }>()
  for (const ids of chunks(nodeIds)) {
    for (const n of await db.selectFrom('nodes').select(['id', 'name', 'hardware']).where('id', 'in', ids).execute()) nodes.set(n.id, { name: n.name, hardware: (n.hardware ?? null) as HardwareProfile | null })
  }
  const orgs = new Map<string, string>()
  for (const ids of chunks(orgIds)) {
    for (const o of await db.selectFrom('organizations').select(['id', 'name']).where('id', 'in', ids).execute()) orgs.set(o.id, o.name)
  }
  // One description per node and kind, not per row.
  const devices = new Map<string, string>()
  return rows.map((r) => {
    const node = r.node_id === null ? undefined : nodes.get(r.node_id)
    const hardware = node?.hardware ?? null
    const { kind, hours } = deviceHours(r.compute_seconds, hardware, r.executor, r.credited_devices ?? r.devices, r.credited_cores)
    const deviceKey = `${r.node_id ?? ''}:${kind}`
    let device = devices.get(deviceKey)
    if (device === undefined) {
      device = describeDevice(hardware, kind)
      devices.set(deviceKey, device)
    }
    return {
      seq: r.seq,
      round: r.round,
      createdAt: r.created_at,
      nodeId: r.node_id,
      nodeName: node?.name ?? r.peer_id.slice(-8),
      peerId: r.peer_id,
      organizationId: r.organization_id,
      organizationName: (r.organization_id === null ? undefined : orgs.get(r.organization_id)) ?? 'unknown organization',
      tokens: Number(r.tokens),
      computeSeconds: r.compute_seconds,
      kind,
      hours,
      device
    }
  })
}

/** GPU-hours and CPU core-hours in a set of rows (or their counted parts). */
export function hoursByKind (parts: Array<{ kind: DeviceKind, hours: number }>): { gpuHours: number, cpuCoreHours: number } {
  let gpuHours = 0
  let cpuCoreHours = 0
  for (const p of parts) {
    if (p.kind === 'gpu') gpuHours += p.hours
    else cpuCoreHours += p.hours
  }
  return { gpuHours, cpuCoreHours }
}

/** GPU-hours and CPU core-hours every node delivered to a run, summed in the database per node. */
export async function runDeliveredHours (db: Kysely<Database>, runId: string): Promise<{ gpuHours: number, cpuCoreHours: number }> {
  const perNode = await db.selectFrom('ledger').select(['node_id', 'executor', 'devices', 'credited_devices', 'credited_cores']).select((eb) => eb.fn.sum<number>('compute_seconds').as('seconds'))
    .where('run_id', '=', runId).where('outcome', '=', 'accepted').groupBy(['node_id', 'executor', 'devices', 'credited_devices', 'credited_cores']).execute()
  const ids = perNode.map((n) => n.node_id).filter((id): id is string => id !== null)
  const hardware = new Map(ids.length === 0 ? [] : (await db.selectFrom('nodes').select(['id', 'hardware']).where('id', 'in', ids).execute()).map((n) => [n.id, n.hardware]))
  return hoursByKind(perNode.map((n) => deviceHours(Number(n.seconds), n.node_id === null ? null : hardware.get(n.node_id), n.executor, n.credited_devices ?? n.devices, n.credited_cores)))
}

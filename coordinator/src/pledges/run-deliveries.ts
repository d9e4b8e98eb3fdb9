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

/**
 * A run's accepted ledger rows in chain order, each priced in GPU-hours or CPU core-hours;
 * only those of `scope.organizationIds` and written after `scope.after` when given, so a
 * long run's readers load the rows they need rather than all of them.
 */
export async function loadRunDeliveries (db: Kysely<Database>, runId: string, scope: { organizationIds?: string[], after?: Date } = {}): Promise<RunDelivery[]> {
  if (scope.organizationIds?.length === 0) return []
  let query = db.selectFrom('ledger')
    .leftJoin('nodes', 'nodes.id', 'ledger.node_id')
    .leftJoin('organizations', 'organizations.id', 'ledger.organization_id')
    .select(['ledger.seq', 'ledger.round', 'ledger.created_at', 'ledger.node_id', 'ledger.peer_id', 'ledger.organization_id', 'ledger.tokens', 'ledger.compute_seconds', 'ledger.executor', 'ledger.devices', 'ledger.credited_devices', 'ledger.credited_cores',
      'nodes.name as node_name', 'nodes.hardware', 'organizations.name as organization_name'])
    .where('ledger.run_id', '=', runId).where('ledger.outcome', '=', 'accepted')
  if (scope.organizationIds !== undefined) query = query.where('ledger.organization_id', 'in', scope.organizationIds)
  if (scope.after !== undefined) query = query.where('ledger.created_at', '>', scope.after)
  const rows = await query.orderBy('ledger.seq').execute()
  return rows.map((r) => {
    const hardware = (r.hardware ?? null) as HardwareProfile | null
    const { kind, hours } = deviceHours(r.compute_seconds, hardware, r.executor, r.credited_devices ?? r.devices, r.credited_cores)
    return {
      seq: r.seq,
      round: r.round,
      createdAt: r.created_at,
      nodeId: r.node_id,
      nodeName: r.node_name ?? r.peer_id.slice(-8),
      peerId: r.peer_id,
      organizationId: r.organization_id,
      organizationName: r.organization_name ?? 'unknown organization',
      tokens: Number(r.tokens),
      computeSeconds: r.compute_seconds,
      kind,
      hours,
      device: describeDevice(hardware, kind)
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

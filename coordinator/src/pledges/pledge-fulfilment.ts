import type { PledgeKind } from '../db/schema.ts'
import { DEVICE_UNIT } from '../ledger/device-hours.ts'
import type { DeviceKind } from '../ledger/device-hours.ts'

/** A pledge as the allocation sees it. */
export interface AllocatablePledge { id: string, kind: PledgeKind, amount: number, organizationId: string | null, createdAt: Date }

/** One accepted ledger row of the run, already priced in device-hours. */
export interface DeliveredRow { seq: number, createdAt: Date, organizationId: string | null, kind: DeviceKind, hours: number, tokens: number }

/** The part of one ledger row counted toward one pledge. */
export interface Allocation { seq: number, at: Date, hours: number, tokens: number, /** fraction of the row's hours */ share: number }

const EPSILON = 1e-9

/** True for the pledge kinds that machines deliver (everything but money). */
export function isComputePledge (kind: PledgeKind): kind is 'gpu_hours' | 'cpu_core_hours' {
  return kind !== 'usd'
}

/**
 * Which delivered compute counts toward which pledge. A compute pledge is fulfilled by accepted
 * ledger rows of the same run that came from machines of the pledger's organization, of the
 * pledged kind (GPU-hours by GPU nodes, CPU core-hours by CPU nodes), and written strictly
 * after the pledge. When several pledges of one organization could take a row, the oldest
 * unfilled one takes it first and the rest spills over, so an hour is never counted twice;
 * hours no pledge needs stay the lab's own gift. Tokens follow hours in proportion.
 * Money pledges and pledges without an organization get nothing here.
 */
export function allocateDeliveries (pledges: AllocatablePledge[], rows: DeliveredRow[]): Map<string, Allocation[]> {
  const result = new Map<string, Allocation[]>()
  const open = pledges
    .filter((p) => isComputePledge(p.kind) && p.organizationId !== null)
    .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id))
    .map((p) => ({ pledge: p, remaining: p.amount }))
  for (const p of pledges) result.set(p.id, [])
  for (const row of [...rows].sort((a, b) => a.seq - b.seq)) {
    if (row.hours <= 0) continue
    let left = row.hours
    for (const slot of open) {
      if (left <= EPSILON) break
      const p = slot.pledge
      if (slot.remaining <= EPSILON || p.organizationId !== row.organizationId || DEVICE_UNIT[row.kind] !== p.kind) continue
      if (row.createdAt.getTime() <= p.createdAt.getTime()) continue
      const hours = Math.min(left, slot.remaining)
      slot.remaining -= hours
      left -= hours
      const share = hours / row.hours
      result.get(p.id)!.push({ seq: row.seq, at: row.createdAt, hours, tokens: row.tokens * share, share })
    }
  }
  return result
}

/** How far a pledge is delivered, from its allocations. */
export function fulfilmentOf (pledge: AllocatablePledge, allocations: Allocation[]): { delivered: number, fraction: number, fulfilled: boolean, fulfilledAt: string | null } {
  let delivered = 0
  let fulfilledAt: string | null = null
  for (const a of allocations) {
    delivered += a.hours
    if (fulfilledAt === null && delivered >= pledge.amount - EPSILON) fulfilledAt = a.at.toISOString()
  }
  return { delivered, fraction: pledge.amount > 0 ? Math.min(1, delivered / pledge.amount) : 0, fulfilled: fulfilledAt !== null, fulfilledAt }
}

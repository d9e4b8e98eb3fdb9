import { formatHours, formatUsd } from './format.ts'

/** What a pledge is counted in. */
export type PledgeKind = 'usd' | 'gpu_hours' | 'cpu_core_hours'
/** What a node's time is counted as (ledger/device-hours.ts on the coordinator). */
export type DeviceKind = 'gpu' | 'cpu'

/** Short unit labels, as meters and tables show them. */
export const UNIT_SHORT: Record<Exclude<PledgeKind, 'usd'>, string> = { gpu_hours: 'GPU-h', cpu_core_hours: 'CPU core-h' }
/** Unit names in sentences. */
export const UNIT_WORDS: Record<PledgeKind, string> = { usd: 'US dollars', gpu_hours: 'GPU-hours', cpu_core_hours: 'CPU core-hours' }

/** "$250", "1.50 GPU-h", "4.00 CPU core-h". */
export function formatPledgeAmount (kind: PledgeKind, amount: number): string {
  return kind === 'usd' ? formatUsd(amount) : `${formatHours(amount)} ${UNIT_SHORT[kind]}`
}

/** Device-hours with their unit: "0.50 GPU-h", "2.00 CPU core-h". */
export function formatDeviceHours (kind: DeviceKind, hours: number): string {
  return `${formatHours(hours)} ${kind === 'gpu' ? 'GPU-h' : 'CPU core-h'}`
}

import type { HardwareProfile } from '@barnraise/protocol'

/** What a ledger row's compute time is counted as: GPU-hours or CPU core-hours. */
export type DeviceKind = 'gpu' | 'cpu'

/** The part of a node's self-description that decides how its time is counted. */
export type DeviceClaim = Pick<HardwareProfile, 'gpus' | 'cpuCores'>

/** One unit per kind, as pledges and goals name them. */
export const DEVICE_UNIT = { gpu: 'gpu_hours', cpu: 'cpu_core_hours' } as const satisfies Record<DeviceKind, string>

/**
 * How a node's time counts, from the hardware profile it sent when it (re-)joined — a claim,
 * like the compute-seconds in its signed reports: a node listing any GPU trains on GPU time,
 * one listing none on CPU time. A node whose profile is unknown counts as CPU.
 */
export function deviceKindOf (hardware: Partial<DeviceClaim> | null | undefined): DeviceKind {
  return (hardware?.gpus?.length ?? 0) > 0 ? 'gpu' : 'cpu'
}

/**
 * Device-hours a row's compute-seconds are worth. A GPU node's wall-clock hour is one GPU-hour,
 * never one per listed GPU: nothing in a report shows that more than one worked. A CPU node's
 * hour is worth its claimed core count in core-hours, an upper bound when the agent was told
 * to use fewer threads than the machine has.
 */
export function deviceHours (computeSeconds: number, hardware: Partial<DeviceClaim> | null | undefined): { kind: DeviceKind, hours: number } {
  const kind = deviceKindOf(hardware)
  const seconds = Number.isFinite(computeSeconds) && computeSeconds > 0 ? computeSeconds : 0
  if (kind === 'gpu') return { kind, hours: seconds / 3600 }
  const cores = Number.isInteger(hardware?.cpuCores) && hardware!.cpuCores! > 0 ? hardware!.cpuCores! : 1
  return { kind, hours: seconds * cores / 3600 }
}

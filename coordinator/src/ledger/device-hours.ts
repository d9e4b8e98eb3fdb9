import type { HardwareProfile } from '@barnraise/protocol'

/** What a ledger row's compute time is counted as: GPU-hours or CPU core-hours. */
export type DeviceKind = 'gpu' | 'cpu'

/** The part of a node's self-description that decides how its time is counted. */
export type DeviceClaim = Pick<HardwareProfile, 'gpus' | 'cpuCores'>

/** One unit per kind, as pledges and goals name them. */
export const DEVICE_UNIT = { gpu: 'gpu_hours', cpu: 'cpu_core_hours' } as const satisfies Record<DeviceKind, string>

/**
 * How a row's time counts. The executor the node signed into its report says what trained it
 * (`torch-cuda` a GPU; `typescript` and `torch-cpu` the CPU, whatever else the machine has);
 * rows from before reports named one fall back to the hardware profile the node sent when it
 * (re-)joined: any GPU listed means GPU time. Both are claims, so GPU time needs both to agree
 * when both are there: a `torch-cuda` report from a machine that listed no GPU counts as CPU.
 * A node whose profile is unknown counts as CPU.
 */
export function deviceKindOf (hardware: Partial<DeviceClaim> | null | undefined, executor?: string | null): DeviceKind {
  const listsGpu = (hardware?.gpus?.length ?? 0) > 0
  if (executor === undefined || executor === null) return listsGpu ? 'gpu' : 'cpu'
  return executor === 'torch-cuda' && listsGpu ? 'gpu' : 'cpu'
}

/**
 * Device-hours a row's compute-seconds are worth. A GPU node's wall-clock hour is one GPU-hour
 * per GPU that trained the report together: the count the coordinator credited from the one its
 * signed report gives (`ledger.credited_devices`, a node on `--device cuda:all`; see
 * device-credit.ts), never more than the GPUs it listed, one when the report gives none
 * (listing GPUs shows nothing about how many worked). A CPU node's hour is worth the cores
 * credited to the row when it was written (`ledger.credited_cores`: its claimed count, as far
 * as its throughput shows it). That column also fixes the kind when the row is written (0: GPU
 * time), so a node re-joining with another profile changes neither; rows from before it are
 * judged by the profile the node has now. Since device-credit.ts's creditRow writes them, a
 * row from a GPU that did not show a GPU's work is pinned as one CPU core, so a pinned GPU-time
 * row's hours never exceed its tokens at the device floor's rate; rows pinned before that keep
 * the kind and count they were hashed with.
 */
export function deviceHours (computeSeconds: number, hardware: Partial<DeviceClaim> | null | undefined, executor?: string | null, devices?: number | null, creditedCores?: number | null): { kind: DeviceKind, hours: number } {
  const pinned = Number.isInteger(creditedCores) && creditedCores! >= 0
  const kind = pinned ? (creditedCores === 0 ? 'gpu' : 'cpu') : deviceKindOf(hardware, executor)
  const seconds = Number.isFinite(computeSeconds) && computeSeconds > 0 ? computeSeconds : 0
  if (kind === 'gpu') {
    const claimed = Number.isInteger(devices) && devices! > 1 ? devices! : 1
    // A pinned row's count was held to the GPUs listed when it was written; older rows use today's list.
    return { kind, hours: seconds * (pinned ? claimed : Math.min(claimed, Math.max(1, hardware?.gpus?.length ?? 1))) / 3600 }
  }
  const cores = pinned
    ? creditedCores!
    : Number.isInteger(hardware?.cpuCores) && hardware!.cpuCores! > 0 ? hardware!.cpuCores! : 1
  return { kind, hours: seconds * cores / 3600 }
}

// What an accepted row's time is credited as. Both the device count a report signs and the
// seconds it claims are the node's word, and GPU-hours are their product, so a row counts as GPU
// time only as far as its work shows it: its tokens per second (tokens ÷ its claimed seconds) are
// judged against a floor per device. "Plausible" is taken from the run itself where it can be:
// half the tokens/s of the run's slower single-GPU nodes (one rate per node, the median of its
// rows among the run's latest 200 single-GPU rows; then the 25th percentile across nodes: same
// model, same precision, no count to inflate), so an honest rig of the run's slower GPUs is
// credited in full; before three nodes have such rows, a fixed floor of 10 TFLOP/s a device
// (6 × parameters × tokens/s), which any GPU worth pooling clears on a real model. The run's
// rows never set the floor below half the fixed one (5 TFLOP/s), so nodes that file slow rows
// on purpose cannot pull it down further. A row from a GPU (a node that lists one, training
// with torch-cuda or naming no executor) counts as GPU time only if it shows at least the floor
// for one device, or 1 TFLOP/s where that is lower (MIN_GPU_TIME_FLOPS: so a run of fast GPUs
// does not demote an honest slower one, nor the fixed floor an fp32 card); otherwise it counts
// as one CPU core. A GPU-time row is credited as many of the
// devices it names as its rate clears the floor for. So a node with one GPU that signs 64 earns
// about 2 GPU-hours an hour beside peers with the same GPU, not 64; and whatever seconds it
// claims, a row's GPU-hours never exceed its tokens at the GPU-time floor's rate (the lower of the
// run's floor and 1 TFLOP/s), so a credited GPU-hour always stands for work.
import { sql } from 'kysely'
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { DeviceKind } from './device-hours.ts'

/** The fixed floor per device, in FLOP/s, used until the run has enough single-GPU nodes. */
export const MIN_DEVICE_FLOPS = 10e12

/** Nodes with single-GPU rows a run needs before they set the floor. */
export const MIN_REFERENCE_NODES = 3

/** The latest single-GPU rows the floor is taken from (each node's rate is the median of its rows among them). */
export const REFERENCE_WINDOW = 200

/** Which of the nodes' rates sets the floor: the 25th percentile, a slower GPU of the run. */
export const REFERENCE_PERCENTILE = 0.25

/** A device must train at least this share of that rate to count. */
export const REFERENCE_SHARE = 0.5

/** The run's rows never set the floor below this share of the fixed floor (MIN_DEVICE_FLOPS). */
export const MIN_FLOOR_SHARE = 0.5

/**
 * The least a row from a GPU must show to count as GPU time at all, in FLOP/s: a tenth of the
 * device floor. Any GPU of the last decade clears it on a real model, fp32 ones (a T4) included,
 * where 10 TFLOP/s would have demoted them; a CPU-only machine claiming a GPU does not, short of
 * a large server doing work of that size. The demo presets (tiny, small) are too small for any
 * GPU to show it (kernel launches, not FLOPs, bound them), so there a GPU's rows are core-time.
 */
export const MIN_GPU_TIME_FLOPS = 1e12

/** What a report's device count and GPU time are judged against. */
export interface DeviceFloor {
  /** tokens/s each device a report names must show to be credited */
  tokensPerSecond: number
  /**
   * tokens/s a row must show to count as GPU time at all: the floor, or MIN_GPU_TIME_FLOPS' rate
   * where that is lower (a run of fast GPUs does not demote an honest slower one to CPU time)
   */
  gpuTime: number
  /** where the floor came from, for the log */
  source: 'run' | 'fixed floor'
}

/** The fixed floor's tokens/s for a model of `paramCount` parameters (6 × parameters × tokens/s = MIN_DEVICE_FLOPS). */
export function fixedFloorTokensPerSecond (paramCount: number): number {
  return MIN_DEVICE_FLOPS / (6 * Math.max(1, paramCount))
}

/** The tokens/s a row must show to count as GPU time at all on a model of `paramCount` parameters (MIN_GPU_TIME_FLOPS). */
export function gpuTimeFloorTokensPerSecond (paramCount: number): number {
  return MIN_GPU_TIME_FLOPS / (6 * Math.max(1, paramCount))
}

/**
 * The floor from the run's single-GPU nodes' rates (tokens/s, one per node: `nodeRates`) and
 * its parameter count: half their 25th percentile, never below MIN_FLOOR_SHARE of the fixed
 * floor; the fixed floor until MIN_REFERENCE_NODES nodes have rates.
 */
export function deviceFloor (perNodeRates: number[], paramCount: number): DeviceFloor {
  const fixed = fixedFloorTokensPerSecond(paramCount)
  const rates = perNodeRates.filter((r) => Number.isFinite(r) && r > 0).sort((a, b) => a - b)
  if (rates.length >= MIN_REFERENCE_NODES) {
    const slower = rates[Math.floor(REFERENCE_PERCENTILE * (rates.length - 1))]!
    const floor = Math.max(REFERENCE_SHARE * slower, MIN_FLOOR_SHARE * fixed)
    return { tokensPerSecond: floor, gpuTime: Math.min(floor, gpuTimeFloorTokensPerSecond(paramCount)), source: 'run' }
  }
  return { tokensPerSecond: fixed, gpuTime: gpuTimeFloorTokensPerSecond(paramCount), source: 'fixed floor' }
}

/**
 * One rate per node: the median of its rows' tokens/s (rows whose rate is not a positive
 * number are left out), so a node that files many rows counts once, as one that files few.
 */
export function nodeRates (rows: Array<{ node: string, rate: number }>): number[] {
  const byNode = new Map<string, number[]>()
  for (const { node, rate } of rows) {
    if (!(Number.isFinite(rate) && rate > 0)) continue
    const rates = byNode.get(node) ?? []
    rates.push(rate)
    byNode.set(node, rates)
  }
  return [...byNode.values()].map((rates) => {
    const sorted = rates.sort((a, b) => a - b)
    const mid = Math.floor(sorted.length / 2)
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  })
}

/**
 * Devices credited to a report that claims `claimed` (≥ 2): as many as its rate clears the
 * floor for, at least one, at most the claim. A report with no measurable time counts no hours
 * anyway, so its claim stands. Whether the row is GPU time at all is creditRow's question.
 */
export function creditedDevices (claimed: number, tokens: number, computeSeconds: number, floor: DeviceFloor): number {
  if (!(computeSeconds > 0) || !(floor.tokensPerSecond > 0)) return claimed
  const shown = Math.floor(tokens / computeSeconds / floor.tokensPerSecond)
  return Math.max(1, Math.min(claimed, shown))
}

/**
 * The least a credited CPU core trains, in FLOP/s (6 × parameters × tokens/s): a tenth or less
 * of what one core of any machine worth pooling does (on the 2-core VM this was written on, one
 * thread of the TypeScript trainer reaches 1.3 GFLOP/s, a torch rank 1.6).
 */
export const MIN_CORE_FLOPS = 0.1e9

/**
 * CPU cores credited to a row counted as CPU time: as many of the node's claimed cores as its
 * throughput clears MIN_CORE_FLOPS for, at least one. The core count is an unsigned claim in
 * the node's hardware profile, so it counts only as far as the work shows it; a node told to
 * use fewer threads than its machine has is credited about what it used.
 */
export function creditedCores (claimed: number, tokens: number, computeSeconds: number, paramCount: number): number {
  const cores = Number.isInteger(claimed) && claimed > 0 ? claimed : 1
  if (!(computeSeconds > 0) || !(paramCount > 0)) return 1
  const shown = Math.floor(6 * paramCount * tokens / computeSeconds / MIN_CORE_FLOPS)
  return Math.max(1, Math.min(cores, shown))
}

/** What an accepted row is credited: the ledger's `credited_devices` and `credited_cores`. */
export interface RowCredit {
  /** devices credited of those the report names (1 to its count); null when it names none */
  devices: number | null
  /** CPU cores credited; 0: the row is GPU time */
  cores: number
}

/** What creditRow judges a report by. */
export interface RowClaim {
  /** what the node's executor and profile say trained it (deviceKindOf) */
  kind: DeviceKind
  /** the device count its report signs (2 to 64), or null */
  devices: number | null
  /** GPUs the node's profile lists now */
  listedGpus: number
  /** cores the node's profile claims */
  cpuCores: number
  tokens: number
  computeSeconds: number
  paramCount: number
}

/**
 * The credit of an accepted row, fixed when it is written (device-hours.ts reads it back). A
 * row from a GPU is GPU time only if its rate shows at least `floor.gpuTime` for one device;
 * then it is credited the devices it names as far as its rate shows them at the floor, and no
 * more than the GPUs the node lists. So its GPU-seconds (seconds × devices) never exceed its
 * tokens ÷ `floor.gpuTime`: one device needs rate ≥ gpuTime, and n ≥ 2 devices need
 * rate ≥ n × floor ≥ n × gpuTime. A row from a GPU below that counts as one CPU core: whatever
 * it ran on, it showed less than a GPU's work. A CPU row is credited its cores as its rate shows
 * them (creditedCores).
 */
export function creditRow (r: RowClaim, floor: DeviceFloor): RowCredit {
  const named = r.devices !== null && Number.isInteger(r.devices) && r.devices >= 2 ? r.devices : null
  const counted = named === null ? null : creditedDevices(named, r.tokens, r.computeSeconds, floor)
  if (r.kind === 'gpu') {
    const shows = !(r.computeSeconds > 0) || r.tokens / r.computeSeconds >= floor.gpuTime
    if (shows) return { devices: counted === null ? null : Math.min(Math.max(1, r.listedGpus), counted), cores: 0 }
    return { devices: counted, cores: 1 }
  }
  return { devices: counted, cores: creditedCores(r.cpuCores, r.tokens, r.computeSeconds, r.paramCount) }
}

/**
 * The run's device floor from its latest accepted single-GPU rows: torch-cuda, no device count,
 * from nodes that listed a GPU (the rows that can count as GPU time; a CPU machine's torch-cuda
 * claim would only drag the floor down), one rate per node.
 */
export async function loadDeviceFloor (db: Kysely<Database> | Transaction<Database>, runId: string, paramCount: number): Promise<DeviceFloor> {
  const rows = await db.selectFrom('ledger').innerJoin('nodes', 'nodes.id', 'ledger.node_id').select(['nodes.id as node_id', 'ledger.tokens', 'ledger.compute_seconds'])
    .where('ledger.run_id', '=', runId).where('ledger.outcome', '=', 'accepted').where('ledger.executor', '=', 'torch-cuda')
    .where('ledger.devices', 'is', null).where('ledger.compute_seconds', '>', 0)
    .where(sql<boolean>`jsonb_typeof(nodes.hardware->'gpus') = 'array' and jsonb_array_length(nodes.hardware->'gpus') > 0`)
    .orderBy('ledger.seq', 'desc').limit(REFERENCE_WINDOW).execute()
  return deviceFloor(nodeRates(rows.map((r) => ({ node: r.node_id, rate: Number(r.tokens) / r.compute_seconds }))), paramCount)
}

// How many of the devices a report names the coordinator credits. The count is the node's signed
// claim and it multiplies GPU-hours, so it counts only as far as the work shows it: a report's
// tokens per second (tokens ÷ its claimed seconds) must be what that many devices could
// plausibly deliver. "Plausibly" is a floor per device, taken from the run itself where it can
// be: half the tokens/s of the run's slower single-GPU rows (the 25th percentile of the latest
// 200: same model, same precision, and no count to inflate), so an honest rig of the run's
// slower GPUs is credited in full; before there are enough of those, a fixed floor of
// 10 TFLOP/s a device (6 × parameters × tokens/s), which any GPU worth pooling clears on a real
// model. A node with one GPU that signs 64 therefore earns about 2 GPU-hours an hour beside
// peers with the same GPU, not 64; and whatever seconds it claims, a report's GPU-hours never
// exceed its tokens at the floor's rate, so a credited GPU-hour always stands for work.
import { sql } from 'kysely'
import type { Kysely, Transaction } from 'kysely'
import type { Database } from '../db/schema.ts'

/** The fixed floor per device, in FLOP/s, used until the run has enough single-GPU rows. */
export const MIN_DEVICE_FLOPS = 10e12

/** Single-GPU rows a run needs before they set the floor. */
export const MIN_REFERENCE_ROWS = 3

/** The latest single-GPU rows the floor is taken from. */
export const REFERENCE_WINDOW = 200

/** Which of those rows' rates sets the floor: the 25th percentile, a slower GPU of the run. */
export const REFERENCE_PERCENTILE = 0.25

/** A device must train at least this share of that rate to count. */
export const REFERENCE_SHARE = 0.5

/** What a report's device count is judged against: tokens/s one device must reach to count. */
export interface DeviceFloor {
  tokensPerSecond: number
  /** where the floor came from, for the log */
  source: 'run' | 'fixed floor'
}

/** The floor from a run's single-GPU rates (tokens/s) and its parameter count. */
export function deviceFloor (singleGpuRates: number[], paramCount: number): DeviceFloor {
  const rates = singleGpuRates.filter((r) => Number.isFinite(r) && r > 0).sort((a, b) => a - b)
  if (rates.length >= MIN_REFERENCE_ROWS) {
    const slower = rates[Math.floor(REFERENCE_PERCENTILE * (rates.length - 1))]!
    return { tokensPerSecond: REFERENCE_SHARE * slower, source: 'run' }
  }
  return { tokensPerSecond: MIN_DEVICE_FLOPS / (6 * Math.max(1, paramCount)), source: 'fixed floor' }
}

/**
 * Devices credited to a report that claims `claimed` (≥ 2): as many as its rate clears the
 * floor for, at least one, at most the claim. A report with no measurable time counts no hours
 * anyway, so its claim stands.
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

/**
 * The run's device floor from its latest accepted single-GPU rows: torch-cuda, no device count,
 * from nodes that listed a GPU (the rows that count as GPU time; a CPU machine's torch-cuda
 * claim would only drag the floor down).
 */
export async function loadDeviceFloor (db: Kysely<Database> | Transaction<Database>, runId: string, paramCount: number): Promise<DeviceFloor> {
  const rows = await db.selectFrom('ledger').innerJoin('nodes', 'nodes.id', 'ledger.node_id').select(['ledger.tokens', 'ledger.compute_seconds'])
    .where('ledger.run_id', '=', runId).where('ledger.outcome', '=', 'accepted').where('ledger.executor', '=', 'torch-cuda')
    .where('ledger.devices', 'is', null).where('ledger.compute_seconds', '>', 0)
    .where(sql<boolean>`jsonb_typeof(nodes.hardware->'gpus') = 'array' and jsonb_array_length(nodes.hardware->'gpus') > 0`)
    .orderBy('ledger.seq', 'desc').limit(REFERENCE_WINDOW).execute()
  return deviceFloor(rows.map((r) => Number(r.tokens) / r.compute_seconds), paramCount)
}

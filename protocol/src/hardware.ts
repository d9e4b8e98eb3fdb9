import { z } from 'zod'
import { plainTextSchema } from './plain-text.ts'

// Every string here is shown on the dashboard (GPU names and the CPU model publicly; hostname,
// platform and driver to the node's own lab): plain text only (plain-text.ts). An agent turns
// what its machine reports into plain text first (node-agent/src/hardware.ts machineText).

/** One NVIDIA GPU as `nvidia-smi` describes it. */
export const gpuSchema = z.object({
  name: plainTextSchema({ max: 200 }),
  memoryMiB: z.number().int().nonnegative(),
  driverVersion: plainTextSchema({ max: 50 }).optional()
})

/** The most CPU cores a machine may claim (and a ledger row be credited). */
export const MAX_CPU_CORES = 4096

/** What an agent reports about the machine it runs on. */
export const hardwareProfileSchema = z.object({
  hostname: plainTextSchema({ max: 255 }),
  platform: plainTextSchema({ max: 50 }),
  arch: plainTextSchema({ max: 50 }),
  cpuModel: plainTextSchema({ max: 200 }),
  cpuCores: z.number().int().positive().max(MAX_CPU_CORES),
  memoryBytes: z.number().int().nonnegative(),
  gpus: z.array(gpuSchema).max(64)
})

export type Gpu = z.infer<typeof gpuSchema>
export type HardwareProfile = z.infer<typeof hardwareProfileSchema>

import { z } from 'zod'

/** One NVIDIA GPU as `nvidia-smi` describes it. */
export const gpuSchema = z.object({
  name: z.string().max(200),
  memoryMiB: z.number().int().nonnegative(),
  driverVersion: z.string().max(50).optional()
})

/** The most CPU cores a machine may claim (and a ledger row be credited). */
export const MAX_CPU_CORES = 4096

/** What an agent reports about the machine it runs on. */
export const hardwareProfileSchema = z.object({
  hostname: z.string().max(255),
  platform: z.string().max(50),
  arch: z.string().max(50),
  cpuModel: z.string().max(200),
  cpuCores: z.number().int().positive().max(MAX_CPU_CORES),
  memoryBytes: z.number().int().nonnegative(),
  gpus: z.array(gpuSchema).max(64)
})

export type Gpu = z.infer<typeof gpuSchema>
export type HardwareProfile = z.infer<typeof hardwareProfileSchema>

// A run's first base is its model as initialised from the run's seed: every node can make those
// bytes itself, with the same code the coordinator stored them with, instead of downloading a
// model (4 GB for a 1B model) before its first step. What it makes is used only if it hashes to
// the unit's baseCheckpoint, so a coordinator or trainer that disagrees costs one download.
import type { LlamaConfig } from '@barnraise/protocol'
import { initialCheckpoint } from '@barnraise/trainer'

export type InitialBaseOutcome =
  | { made: true, bytes: Uint8Array }
  | { made: false, reason: string }

/** The run's untrained model made from `seed` (on a worker thread), if it is the checkpoint `sha256`. */
export async function makeInitialBase (config: LlamaConfig, seed: number, sha256: string, signal?: AbortSignal): Promise<InitialBaseOutcome> {
  const made = await initialCheckpoint(config, seed, signal)
  if (made.sha256 !== sha256) return { made: false, reason: `the model made from seed ${seed} hashes to ${made.sha256.slice(0, 12)}, not the base ${sha256.slice(0, 12)}` }
  return { made: true, bytes: made.bytes }
}

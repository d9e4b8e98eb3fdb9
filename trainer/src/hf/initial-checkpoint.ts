// A run's round-0 checkpoint: the model initialised from the run's seed, stored as F32
// safetensors. The coordinator stores it when a run is created and every agent there from the
// start makes it instead of downloading it; both make it here, on a worker thread, because a
// large model takes tens of seconds (a 1B model about 50 s on one core) and neither side may
// stop answering its peers meanwhile.
import type { LlamaConfig } from '@barnraise/protocol'
import { callWorker } from '../workers/worker-call.ts'
import type { InitialCheckpointJob, InitialCheckpointReply } from './initial-checkpoint-worker.ts'

/** The round-0 checkpoint's bytes and sha256 for `config` initialised from `seed`; `signal` stops the worker. */
export async function initialCheckpoint (config: LlamaConfig, seed: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array, sha256: string }> {
  const reply = await callWorker<InitialCheckpointReply>(new URL('./initial-checkpoint-worker.ts', import.meta.url), {
    what: 'the worker making the initial checkpoint',
    workerData: { config, seed } satisfies InitialCheckpointJob,
    signal
  })
  return { bytes: new Uint8Array(reply.buffer), sha256: reply.sha256 }
}

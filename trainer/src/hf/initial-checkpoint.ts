// A run's round-0 checkpoint: the model initialised from the run's seed, stored as F32
// safetensors. The coordinator stores it when a run is created and every agent there from the
// start makes it instead of downloading it; both make it here, on a worker thread, because a
// large model takes tens of seconds (a 1B model about 50 s on one core) and neither side may
// stop answering its peers meanwhile.
import { Worker } from 'node:worker_threads'
import type { LlamaConfig } from '@barnraise/protocol'
import type { InitialCheckpointJob, InitialCheckpointReply } from './initial-checkpoint-worker.ts'

/** The round-0 checkpoint's bytes and sha256 for `config` initialised from `seed`; `signal` stops the worker. */
export async function initialCheckpoint (config: LlamaConfig, seed: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array, sha256: string }> {
  signal?.throwIfAborted()
  const worker = new Worker(new URL('./initial-checkpoint-worker.ts', import.meta.url), { workerData: { config, seed } satisfies InitialCheckpointJob })
  const abort = (): void => { void worker.terminate() }
  signal?.addEventListener('abort', abort, { once: true })
  try {
    return await new Promise((resolve, reject) => {
      signal?.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      worker.once('message', (m: InitialCheckpointReply) => { resolve({ bytes: new Uint8Array(m.buffer), sha256: m.sha256 }) })
      worker.once('error', reject)
      worker.once('exit', (code) => { reject(new Error(`the worker making the initial checkpoint stopped (exit ${code}) before finishing`)) })
    })
  } finally {
    signal?.removeEventListener('abort', abort)
    await worker.terminate()
  }
}

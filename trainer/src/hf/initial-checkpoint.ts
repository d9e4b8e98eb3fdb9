// A run's round-0 checkpoint: the model initialised from the run's seed, stored as F32
// safetensors. The coordinator stores it when a run is created and every agent there from the
// start makes it instead of downloading it; both make it here, on a worker thread, because a
// large model takes tens of seconds (a 1B model about 50 s on one core) and neither side may
// stop answering its peers meanwhile. Both read the same stream (initialCheckpointChunks), so
// their bytes cannot drift apart: the coordinator writes it to its blob store as it comes and
// never holds the model; the agent, which trains from the values, gathers it whole.
import { createHash } from 'node:crypto'
import { MessageChannel } from 'node:worker_threads'
import { safetensorsHeader } from '@barnraise/protocol'
import type { LlamaConfig } from '@barnraise/protocol'
import { ModelError } from '../model/model-error.ts'
import { paramSpecs } from '../model/params.ts'
import { callWorker } from '../workers/worker-call.ts'
import { assertInitSeed } from './initial-weights.ts'
import type { InitialCheckpointJob, InitialCheckpointMessage, SliceRequest } from './initial-checkpoint-worker.ts'

/**
 * Values in one slice of the stream: 8 MiB, about 0.1 s of work. No message is model-sized (a 1B
 * model's embedding alone is 260 MB with a 32k vocabulary), and two slices in flight keep the
 * worker busy while the other side writes.
 */
export const INITIAL_CHECKPOINT_SLICE_VALUES = 2 * 1024 * 1024

/** Slices asked of the worker ahead of the reader: it fills one while the other is written. */
const SLICES_IN_FLIGHT = 2

/** The round-0 checkpoint's header (storedCheckpointBytes's for this config) and how many bytes of weights follow it. */
export function initialCheckpointHeader (config: LlamaConfig): { header: Uint8Array, dataBytes: number } {
  return safetensorsHeader(new Map(paramSpecs(config).map((s) => [s.name, { dtype: 'F32' as const, shape: s.shape }])), { format: 'pt' })
}

export interface InitialCheckpointChunkOptions {
  /** Aborting terminates the worker; the stream then throws the signal's reason. */
  signal?: AbortSignal
  /** Values a slice (INITIAL_CHECKPOINT_SLICE_VALUES unless given: tests cut small models into several). */
  sliceValues?: number
}

/**
 * The round-0 checkpoint's bytes for `config` from `seed`, as they are made on a worker thread:
 * the header, then the weights a slice at a time. Each chunk is lent: asking for the next moves
 * its memory back to the worker to be filled again (it then reads as empty), so write, hash or
 * copy it first, as BlobStore.put does. The worker is terminated however the stream ends.
 */
export async function * initialCheckpointChunks (config: LlamaConfig, seed: number, options: InitialCheckpointChunkOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const sliceValues = options.sliceValues ?? INITIAL_CHECKPOINT_SLICE_VALUES
  if (!Number.isSafeInteger(sliceValues) || sliceValues < 1) throw new ModelError('ERR_BAD_PARAMS', `sliceValues must be a positive integer, got ${sliceValues}`)
  assertInitSeed(seed)
  const { header, dataBytes } = initialCheckpointHeader(config)
  options.signal?.throwIfAborted()
  const slices = Math.ceil(dataBytes / (4 * sliceValues))
  // Ends the worker when the caller aborts, or when the stream stops early: its consumer failed
  // (a full disk) or left. Forwarded by hand: AbortSignal.any's signals live as long as the
  // caller's, which outlives many calls.
  const stop = new AbortController()
  const forward = (): void => { stop.abort(options.signal?.reason) }
  options.signal?.addEventListener('abort', forward, { once: true })
  const inbox = new SliceInbox()
  const { port1: requests, port2 } = new MessageChannel()
  const made = callWorker<undefined, InitialCheckpointMessage>(new URL('./initial-checkpoint-worker.ts', import.meta.url), {
    what: 'the worker making the initial checkpoint',
    workerData: { config, seed, sliceValues, requests: port2 } satisfies InitialCheckpointJob,
    transferList: [port2],
    signal: stop.signal,
    onMessage: (message) => {
      if ('done' in message) return { result: undefined }
      inbox.put(message)
      return undefined
    }
  })
  made.catch((err: unknown) => { inbox.fail(err) })
  try {
    yield header
    let asked = Math.min(SLICES_IN_FLIGHT, slices)
    for (let i = 0; i < asked; i++) requests.postMessage({} satisfies SliceRequest)
    for (let i = 0; i < slices; i++) {
      const { buffer, byteLength } = await inbox.take()
      yield new Uint8Array(buffer, 0, byteLength)
      if (asked < slices) {
        requests.postMessage({ buffer } satisfies SliceRequest, [buffer])
        asked++
      }
    }
    await made
  } finally {
    options.signal?.removeEventListener('abort', forward)
    stop.abort()
    requests.close()
    // Settled (rejected when stopped here) only once the thread is terminated.
    await made.catch(() => {})
  }
}

/**
 * The round-0 checkpoint's bytes (whole) and sha256 for `config` initialised from `seed`, for an
 * agent that trains from it; `signal` stops the worker.
 */
export async function initialCheckpoint (config: LlamaConfig, seed: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array, sha256: string }> {
  const { header, dataBytes } = initialCheckpointHeader(config)
  const bytes = new Uint8Array(header.byteLength + dataBytes)
  const hash = createHash('sha256')
  let at = 0
  for await (const chunk of initialCheckpointChunks(config, seed, { signal })) {
    bytes.set(chunk, at)
    hash.update(chunk)
    at += chunk.byteLength
  }
  return { bytes, sha256: hash.digest('hex') }
}

/** Slices from the worker waiting to be read, or the error that ended it (which wins over slices still waiting). */
class SliceInbox {
  readonly #waiting: Array<{ buffer: ArrayBuffer, byteLength: number }> = []
  #failed: { error: unknown } | undefined
  #reader: { resolve: (slice: { buffer: ArrayBuffer, byteLength: number }) => void, reject: (err: unknown) => void } | undefined

  put (slice: { buffer: ArrayBuffer, byteLength: number }): void {
    const reader = this.#reader
    this.#reader = undefined
    if (reader !== undefined) reader.resolve(slice)
    else this.#waiting.push(slice)
  }

  fail (error: unknown): void {
    this.#failed ??= { error }
    const reader = this.#reader
    this.#reader = undefined
    reader?.reject(error)
  }

  async take (): Promise<{ buffer: ArrayBuffer, byteLength: number }> {
    if (this.#failed !== undefined) throw this.#failed.error
    const next = this.#waiting.shift()
    if (next !== undefined) return next
    return await new Promise((resolve, reject) => { this.#reader = { resolve, reject } })
  }
}

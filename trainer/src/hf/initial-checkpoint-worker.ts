// Worker thread body for initial-checkpoint.ts: initialises, serialises and hashes the model,
// then hands the bytes back without copying them.
import { parentPort, workerData } from 'node:worker_threads'
import type { LlamaConfig } from '@barnraise/protocol'
import { initParams } from '../model/params.ts'
import { sha256Hex } from '../data/shard.ts'
import { storedCheckpointBytes } from './checkpoint-files.ts'

export interface InitialCheckpointJob { config: LlamaConfig, seed: number }
export interface InitialCheckpointReply { buffer: ArrayBuffer, sha256: string }

const job = workerData as InitialCheckpointJob
const made = storedCheckpointBytes(job.config, initParams(job.config, job.seed).flat)
// A view over part of a larger (or shared) buffer cannot be transferred: copy it out first.
const whole = made.byteOffset === 0 && made.buffer instanceof ArrayBuffer && made.byteLength === made.buffer.byteLength
const buffer = whole ? made.buffer as ArrayBuffer : made.slice().buffer
parentPort!.postMessage({ buffer, sha256: sha256Hex(made) } satisfies InitialCheckpointReply, [buffer])
